package xgboost

import (
	"fmt"
	"math"
)

// transform is what an objective does to a row's margins.
type transform uint8

const (
	transformIdentity transform = iota
	transformSigmoid
	transformExp
	transformHinge // 1 if margin > 0, else 0
	transformSoftprob
	transformSoftmax // index of the largest margin
)

// margin is how base_score (stored in output space) becomes the base margin.
type margin uint8

const (
	marginIdentity margin = iota
	marginLogit
	marginLog
)

type objective struct {
	name       string
	kind       transform
	base       margin
	multiclass bool
}

// objectiveByName says how an XGBoost objective predicts, as XGBoost 1.7's
// PredTransform and ProbToMargin define it (checked against python3-xgboost
// 1.7.4 by the parity test).
func objectiveByName(name string) (objective, bool) {
	o := objective{name: name}
	switch name {
	case "binary:logistic", "reg:logistic":
		o.kind, o.base = transformSigmoid, marginLogit
	case "binary:logitraw", "reg:squarederror", "reg:linear", "reg:pseudohubererror",
		"reg:absoluteerror", "reg:squaredlogerror":
		o.kind, o.base = transformIdentity, marginIdentity
	case "binary:hinge":
		o.kind, o.base = transformHinge, marginIdentity
	case "count:poisson", "reg:gamma", "reg:tweedie":
		o.kind, o.base = transformExp, marginLog
	case "multi:softprob":
		o.kind, o.base, o.multiclass = transformSoftprob, marginIdentity, true
	case "multi:softmax":
		o.kind, o.base, o.multiclass = transformSoftmax, marginIdentity, true
	default:
		return objective{}, false
	}
	return o, true
}

// supportedObjectives lists objectiveByName's names for error messages.
const supportedObjectives = "binary:logistic, binary:logitraw, binary:hinge, reg:squarederror (reg:linear), " +
	"reg:logistic, reg:pseudohubererror, reg:absoluteerror, reg:squaredlogerror, count:poisson, reg:gamma, " +
	"reg:tweedie, multi:softprob, multi:softmax"

// baseMargin turns base_score into the margin every row starts from.
func (o objective) baseMargin(score float32) (float32, error) {
	switch o.base {
	case marginLogit:
		if !(score > 0 && score < 1) {
			return 0, fmt.Errorf("base_score %g: objective %s needs 0 < base_score < 1", score, o.name)
		}
		return float32(-math.Log(1/float64(score) - 1)), nil
	case marginLog:
		if !(score > 0) {
			return 0, fmt.Errorf("base_score %g: objective %s needs base_score > 0", score, o.name)
		}
		return float32(math.Log(float64(score))), nil
	}
	return score, nil
}

// apply turns one row's margins (nGroup values) into outputs, writing
// NumOutputs values to out.
func (o objective) apply(margins, out []float32) {
	switch o.kind {
	case transformIdentity:
		out[0] = margins[0]
	case transformSigmoid:
		out[0] = float32(1 / (1 + math.Exp(-float64(margins[0]))))
	case transformExp:
		out[0] = float32(math.Exp(float64(margins[0])))
	case transformHinge:
		if margins[0] > 0 {
			out[0] = 1
		} else {
			out[0] = 0
		}
	case transformSoftprob:
		softmax(margins, out)
	case transformSoftmax:
		best := 0
		for i, v := range margins {
			if v > margins[best] {
				best = i
			}
		}
		out[0] = float32(best)
	}
}

// softmax is XGBoost's: subtract the maximum, exponentiate, normalise.
func softmax(margins, out []float32) {
	hi := margins[0]
	for _, v := range margins[1:] {
		hi = max(hi, v)
	}
	var sum float64
	for _, v := range margins {
		sum += math.Exp(float64(v - hi))
	}
	for i, v := range margins {
		out[i] = float32(math.Exp(float64(v-hi)) / sum)
	}
}

package native

import (
	"net/http"
	"time"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/api/invokehttp"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/runtime"
)

func (a *API) hostingRoutes() {
	a.handle("GET "+Prefix+"models", a.listModels)
	a.handle("POST "+Prefix+"models", a.createModel)
	a.handle("GET "+Prefix+"models/{name}", a.describeModel)
	a.handle("DELETE "+Prefix+"models/{name}", a.deleteModel)

	a.handle("GET "+Prefix+"endpoint-configs", a.listEndpointConfigs)
	a.handle("POST "+Prefix+"endpoint-configs", a.createEndpointConfig)
	a.handle("GET "+Prefix+"endpoint-configs/{name}", a.describeEndpointConfig)
	a.handle("DELETE "+Prefix+"endpoint-configs/{name}", a.deleteEndpointConfig)

	a.handle("GET "+Prefix+"endpoints", a.listEndpoints)
	a.handle("POST "+Prefix+"endpoints", a.createEndpoint)
	a.handle("GET "+Prefix+"endpoints/{name}", a.describeEndpoint)
	a.handle("PUT "+Prefix+"endpoints/{name}", a.updateEndpoint)
	a.handle("DELETE "+Prefix+"endpoints/{name}", a.deleteEndpoint)
	a.handle("POST "+Prefix+"endpoints/{name}/capacity", a.updateCapacity)
	a.mux.HandleFunc("POST "+Prefix+"endpoints/{name}/invocations", a.invoke)
}

func (a *API) listModels(r *http.Request) (int, any, error) {
	ms, err := a.h.ListModels(r.Context())
	if err != nil {
		return 0, nil, err
	}
	if ms == nil {
		ms = []*catalog.Model{}
	}
	return http.StatusOK, ModelList{Models: ms}, nil
}

func (a *API) createModel(r *http.Request) (int, any, error) {
	var in catalog.Model
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	m, err := a.h.CreateModel(r.Context(), &in)
	return http.StatusCreated, m, err
}

func (a *API) describeModel(r *http.Request) (int, any, error) {
	m, err := a.h.DescribeModel(r.Context(), r.PathValue("name"))
	return http.StatusOK, m, err
}

func (a *API) deleteModel(r *http.Request) (int, any, error) {
	return http.StatusNoContent, nil, a.h.DeleteModel(r.Context(), r.PathValue("name"))
}

func (a *API) listEndpointConfigs(r *http.Request) (int, any, error) {
	cs, err := a.h.ListEndpointConfigs(r.Context())
	if err != nil {
		return 0, nil, err
	}
	if cs == nil {
		cs = []*catalog.EndpointConfig{}
	}
	return http.StatusOK, EndpointConfigList{EndpointConfigs: cs}, nil
}

func (a *API) createEndpointConfig(r *http.Request) (int, any, error) {
	var in catalog.EndpointConfig
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c, err := a.h.CreateEndpointConfig(r.Context(), &in)
	return http.StatusCreated, c, err
}

func (a *API) describeEndpointConfig(r *http.Request) (int, any, error) {
	c, err := a.h.DescribeEndpointConfig(r.Context(), r.PathValue("name"))
	return http.StatusOK, c, err
}

func (a *API) deleteEndpointConfig(r *http.Request) (int, any, error) {
	return http.StatusNoContent, nil, a.h.DeleteEndpointConfig(r.Context(), r.PathValue("name"))
}

func (a *API) listEndpoints(r *http.Request) (int, any, error) {
	eps, err := a.h.ListEndpoints(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := EndpointList{Endpoints: make([]*hosting.EndpointDescription, 0, len(eps))}
	for _, ep := range eps {
		d, err := a.h.DescribeEndpoint(r.Context(), ep.EndpointName)
		if err != nil {
			continue // deleted since the list was read
		}
		out.Endpoints = append(out.Endpoints, d)
	}
	return http.StatusOK, out, nil
}

func (a *API) createEndpoint(r *http.Request) (int, any, error) {
	var in CreateEndpointInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if _, err := a.h.CreateEndpoint(r.Context(), in.EndpointName, in.EndpointConfigName, in.Tags); err != nil {
		return 0, nil, err
	}
	d, err := a.h.DescribeEndpoint(r.Context(), in.EndpointName)
	return http.StatusCreated, d, err
}

func (a *API) describeEndpoint(r *http.Request) (int, any, error) {
	d, err := a.h.DescribeEndpoint(r.Context(), r.PathValue("name"))
	return http.StatusOK, d, err
}

func (a *API) updateEndpoint(r *http.Request) (int, any, error) {
	var in UpdateEndpointInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	opts := hosting.UpdateOptions{RetainAllVariantProperties: in.RetainAllVariantProperties}
	for _, e := range in.ExcludeRetainedVariantProperties {
		opts.Excluded = append(opts.Excluded, e.VariantPropertyType)
	}
	name := r.PathValue("name")
	if _, err := a.h.UpdateEndpoint(r.Context(), name, in.EndpointConfigName, opts); err != nil {
		return 0, nil, err
	}
	d, err := a.h.DescribeEndpoint(r.Context(), name)
	return http.StatusAccepted, d, err
}

func (a *API) updateCapacity(r *http.Request) (int, any, error) {
	var in CapacityInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	if _, err := a.h.UpdateEndpointWeightsAndCapacities(r.Context(), name, in.DesiredWeightsAndCapacities); err != nil {
		return 0, nil, err
	}
	d, err := a.h.DescribeEndpoint(r.Context(), name)
	return http.StatusAccepted, d, err
}

func (a *API) deleteEndpoint(r *http.Request) (int, any, error) {
	return http.StatusAccepted, nil, a.h.DeleteEndpoint(r.Context(), r.PathValue("name"))
}

// invoke streams the request body to the endpoint and the model's response
// back, as the SageMaker runtime's InvokeEndpoint does.
func (a *API) invoke(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > a.h.MaxPayloadBytes() {
		a.writeError(w, &apierr.Error{Kind: apierr.PayloadTooLarge, Message: "The request body is larger than the endpoint's limit."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.h.MaxPayloadBytes())
	in := &hosting.InvokeInput{
		EndpointName:  r.PathValue("name"),
		TargetVariant: r.Header.Get(HeaderTargetVariant),
		Caller:        a.caller(r),
		Received:      time.Now(),
		Request: &runtime.Request{
			ContentType: r.Header.Get("Content-Type"),
			Accept:      r.Header.Get("Accept"),
			Body:        r.Body,
			Size:        r.ContentLength,
		},
	}
	in.RequestID = w.Header().Get("x-amzn-RequestId")
	if in.RequestID == "" {
		in.RequestID = awsproto.RequestID()
	}
	iv, err := a.h.Invoke(r.Context(), in)
	if err != nil {
		a.writeError(w, err)
		return
	}
	status := http.StatusOK
	defer func() { iv.Finish(status) }()
	if iv.ContentType != "" {
		w.Header().Set("Content-Type", iv.ContentType)
	}
	w.Header().Set(HeaderInvokedVariant, iv.Variant)
	invokehttp.SetColdStart(w.Header(), iv)
	var cerr error
	status, cerr = invokehttp.Write(w, iv, func(err error) { a.writeError(w, err) })
	if cerr != nil {
		a.log.Warn("response copy", "endpoint", in.EndpointName, "err", cerr)
	}
}

package sagemaker

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
)

// listInput is the common shape of SageMaker's List* inputs.
type listInput struct {
	SortBy                 string
	SortOrder              string
	NextToken              string
	MaxResults             *int
	NameContains           string
	CreationTimeBefore     *catalog.Time
	CreationTimeAfter      *catalog.Time
	LastModifiedTimeBefore *catalog.Time
	LastModifiedTimeAfter  *catalog.Time
	StatusEquals           string
}

type listItem struct {
	name              string
	created, modified catalog.Time
	status            string
	value             any
}

// apply filters, sorts (default CreationTime, Descending) and pages items.
func (in *listInput) apply(items []listItem) ([]any, string, error) {
	max := 10
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, "", apierr.Validationf("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", *in.MaxResults)
		}
		max = *in.MaxResults
	}
	var kept []listItem
	for _, it := range items {
		if in.NameContains != "" && !strings.Contains(strings.ToLower(it.name), strings.ToLower(in.NameContains)) {
			continue
		}
		if in.StatusEquals != "" && it.status != in.StatusEquals {
			continue
		}
		if in.CreationTimeBefore != nil && !it.created.Before(in.CreationTimeBefore.Time) {
			continue
		}
		if in.CreationTimeAfter != nil && !it.created.After(in.CreationTimeAfter.Time) {
			continue
		}
		if in.LastModifiedTimeBefore != nil && !it.modified.Before(in.LastModifiedTimeBefore.Time) {
			continue
		}
		if in.LastModifiedTimeAfter != nil && !it.modified.After(in.LastModifiedTimeAfter.Time) {
			continue
		}
		kept = append(kept, it)
	}
	var cmp func(a, b listItem) int
	switch in.SortBy {
	case "", "CreationTime":
		cmp = func(a, b listItem) int { return a.created.Compare(b.created.Time) }
	case "Name":
		cmp = func(a, b listItem) int { return strings.Compare(a.name, b.name) }
	case "Status":
		cmp = func(a, b listItem) int { return strings.Compare(a.status, b.status) }
	default:
		return nil, "", apierr.Validationf("1 validation error detected: Value '%s' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [Name, CreationTime, Status]", in.SortBy)
	}
	desc := in.SortOrder == "" || in.SortOrder == "Descending"
	if in.SortOrder != "" && in.SortOrder != "Ascending" && in.SortOrder != "Descending" {
		return nil, "", apierr.Validationf("1 validation error detected: Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [Ascending, Descending]", in.SortOrder)
	}
	slices.SortStableFunc(kept, func(a, b listItem) int {
		if desc {
			return cmp(b, a)
		}
		return cmp(a, b)
	})
	start := 0
	if in.NextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		n, err2 := strconv.Atoi(string(raw))
		if err != nil || err2 != nil || n < 0 {
			return nil, "", apierr.Validationf("Invalid pagination token: %s", in.NextToken)
		}
		start = n
	}
	if start > len(kept) {
		start = len(kept)
	}
	end := min(start+max, len(kept))
	page := make([]any, 0, end-start)
	for _, it := range kept[start:end] {
		page = append(page, it.value)
	}
	next := ""
	if end < len(kept) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return page, next, nil
}

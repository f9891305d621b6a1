package main

import (
	"context"
	"encoding/json"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/pkg/apis"
	webhookjson "knative.dev/pkg/webhook/json"
)

type fieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
}

type validateResponse struct {
	ID     json.RawMessage `json:"id"`
	Errors []fieldError    `json:"errors"`
	// DecodeError is set when the webhook would reject the object before validating it: its
	// decoder disallows unknown fields (and, being encoding/json, matches keys case-insensitively).
	DecodeError string `json:"decodeError,omitempty"`
}

func serveValidate(ctx context.Context, req request) validateResponse {
	resp := validateResponse{ID: req.ID, Errors: []fieldError{}}
	spec, err := decodeSpec(req, func(data []byte, v any) error {
		// The eventing webhook is built with disallowUnknownFields = true (cmd/webhook/main.go).
		return webhookjson.Decode(data, v, true)
	})
	if err != nil {
		resp.DecodeError = err.Error()
		return resp
	}
	// The filter part of (*TriggerSpec).Validate, under the "spec" prefix that (*Trigger).Validate adds.
	errs := eventingv1.ValidateAttributeFilters(spec.Filter).ViaField("filter").
		Also(eventingv1.ValidateSubscriptionAPIFiltersList(ctx, spec.Filters).ViaField("filters")).
		ViaField("spec")
	resp.Errors = flatten(errs)
	return resp
}

// flatten lists an apis.FieldError as one entry per (error, path), in Knative's own merged and
// sorted order (the order of its Error() text).
func flatten(errs *apis.FieldError) []fieldError {
	out := []fieldError{}
	if errs == nil {
		return out
	}
	for _, fe := range errs.Filter(apis.ErrorLevel).WrappedErrors() {
		paths := fe.Paths
		if len(paths) == 0 {
			paths = []string{""}
		}
		for _, p := range paths {
			out = append(out, fieldError{Path: p, Message: fe.Message, Details: fe.Details})
		}
	}
	return out
}

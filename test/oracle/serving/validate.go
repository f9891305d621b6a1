package main

import (
	"context"
	"encoding/json"

	authenticationv1 "k8s.io/api/authentication/v1"
	"knative.dev/pkg/apis"
	webhookjson "knative.dev/pkg/webhook/json"
	apisconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

type fieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
}

type validateResponse struct {
	ID json.RawMessage `json:"id"`
	// Defaulted is the object after SetDefaults, as the defaulting webhook's patch leaves it.
	Defaulted json.RawMessage `json:"defaulted"`
	// Errors and Warnings are Validate's error- and warning-level diagnostics, one entry per path.
	Errors   []fieldError `json:"errors"`
	Warnings []fieldError `json:"warnings"`
}

// decodeErrorResponse answers an object that the webhook could not decode (a field of the wrong
// type, not a JSON object): it would deny the request before defaulting or validating.
type decodeErrorResponse struct {
	ID          json.RawMessage `json:"id"`
	DecodeError string          `json:"decodeError"`
}

func (o *oracle) serveValidate(ctx context.Context, req request) any {
	if isNull(req.Object) {
		return errorResponse{ID: req.ID, Error: "validate needs an object"}
	}
	cfg := o.baseConfig
	if len(req.Config) > 0 {
		var err error
		if cfg, err = buildConfig(o.base, req.Config); err != nil {
			return errorResponse{ID: req.ID, Error: err.Error()}
		}
	}

	// The webhooks decorate the context with the config store's current state (store.ToContext),
	// then mark it as a create and attach the request's user (knative.dev/pkg
	// webhook/resourcesemantics/defaulting and validation).
	ctx = apisconfig.ToContext(ctx, cfg)
	ctx = apis.WithinCreate(ctx)
	if req.User != nil {
		ctx = apis.WithUserInfo(ctx, &authenticationv1.UserInfo{Username: *req.User})
	}

	// Both webhooks are built with disallowUnknownFields = false (serving's cmd/webhook/main.go).
	svc := &servingv1.Service{}
	if err := webhookjson.Decode(req.Object, svc, false); err != nil {
		return decodeErrorResponse{ID: req.ID, DecodeError: "cannot decode incoming new object: " + err.Error()}
	}

	// Defaulting webhook: SetDefaults; the API server applies the resulting patch.
	svc.SetDefaults(ctx)
	defaulted, err := json.Marshal(svc)
	if err != nil {
		return errorResponse{ID: req.ID, Error: "cannot encode the defaulted object: " + err.Error()}
	}

	// Validating webhook: it decodes the patched object afresh, then Validate.
	validated := &servingv1.Service{}
	if err := webhookjson.Decode(defaulted, validated, false); err != nil {
		return errorResponse{ID: req.ID, Error: "cannot decode the defaulted object: " + err.Error()}
	}
	result := validated.Validate(ctx)
	return validateResponse{
		ID:        req.ID,
		Defaulted: defaulted,
		Errors:    flatten(result, apis.ErrorLevel),
		Warnings:  flatten(result, apis.WarningLevel),
	}
}

// flatten lists one level of an apis.FieldError as one entry per (error, path), in Knative's own
// merged and sorted order (the order of its Error() text).
func flatten(errs *apis.FieldError, level apis.DiagnosticLevel) []fieldError {
	out := []fieldError{}
	if errs == nil {
		return out
	}
	for _, fe := range errs.Filter(level).WrappedErrors() {
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

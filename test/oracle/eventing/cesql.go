package main

import (
	"context"
	"encoding/json"
	"fmt"

	cesql "github.com/cloudevents/sdk-go/sql/v2"
	sqlerrors "github.com/cloudevents/sdk-go/sql/v2/errors"
	cesqlparser "github.com/cloudevents/sdk-go/sql/v2/parser"
)

type cesqlError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

type cesqlResponse struct {
	ID json.RawMessage `json:"id"`
	// Value is what Evaluate returned (int32, bool or string), also alongside an error; null when
	// the expression did not parse.
	Value  any          `json:"value"`
	Errors []cesqlError `json:"errors"`
	// Panic is set when the parser or Evaluate panicked (an error entry says which).
	Panic string `json:"panic,omitempty"`
	// Error is set when the request itself is unusable (no expression, bad event).
	Error string `json:"error,omitempty"`
}

func serveCESQL(ctx context.Context, req request) cesqlResponse {
	resp := cesqlResponse{ID: req.ID, Errors: []cesqlError{}}
	if req.Expression == nil {
		resp.Error = "expression: missing"
		return resp
	}
	// As the TCK runner does, the event is used as parsed, without the ingress validation.
	event, err := parseEvent(ctx, req.Event, req.Encoding, false)
	if err != nil {
		resp.Error = err.Error()
		return resp
	}

	var expr cesql.Expression
	if p := recovering("parse", func() { expr, err = cesqlparser.Parse(*req.Expression) }); p != "" {
		resp.Panic = p
		resp.Errors = append(resp.Errors, cesqlError{Kind: "parse", Message: p})
		return resp
	}
	if err != nil {
		// Parse may return a partial expression with the error; Knative and the TCK use neither.
		resp.Errors = append(resp.Errors, classify(err))
		return resp
	}

	var value any
	if p := recovering("evaluate", func() { value, err = expr.Evaluate(*event) }); p != "" {
		resp.Panic = p
		resp.Errors = append(resp.Errors, cesqlError{Kind: "generic", Message: p})
		return resp
	}
	resp.Value = value
	if err != nil {
		resp.Errors = append(resp.Errors, classify(err))
	}
	return resp
}

func classify(err error) cesqlError {
	kind := "generic"
	switch {
	case sqlerrors.IsParseError(err):
		kind = "parse"
	case sqlerrors.IsMathError(err):
		kind = "math"
	case sqlerrors.IsCastError(err):
		kind = "cast"
	case sqlerrors.IsMissingAttributeError(err):
		kind = "missingAttribute"
	case sqlerrors.IsMissingFunctionError(err):
		kind = "missingFunction"
	case sqlerrors.IsFunctionEvaluationError(err):
		kind = "functionEvaluation"
	case sqlerrors.IsGenericError(err):
		kind = "generic"
	default:
		// Not a cesqlError at all: still generic, but say so.
		return cesqlError{Kind: kind, Message: fmt.Sprintf("%T: %v", err, err)}
	}
	return cesqlError{Kind: kind, Message: err.Error()}
}

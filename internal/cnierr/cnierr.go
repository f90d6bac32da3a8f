// Package cnierr decides the CNI error code of every plexus failure, in one
// place: Code. Inner packages return ordinary wrapped errors — sentinel and
// typed errors (nad.ErrNotFound, *fielderr.Error, API and transport errors)
// say what happened, and Code maps them to codes. The few conditions only
// the caller can name (CNI_ARGS are the runtime's environment, a record is
// unreadable, a sandbox belongs to an earlier pod) are marked with New or
// Wrap. docs/errors.md is the table; TestCode and the plugin's error table
// test keep the two in step.
package cnierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/containernetworking/cni/pkg/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// CNI error codes used by plexus (CNI SPEC 1.1 §Error; 0-99 reserved).
const (
	IncompatibleVersion uint = types.ErrIncompatibleCNIVersion // 1
	UnsupportedField    uint = types.ErrUnsupportedField       // 2
	UnknownContainer    uint = types.ErrUnknownContainer       // 3
	InvalidEnv          uint = types.ErrInvalidEnvironmentVariables
	IOFailure           uint = types.ErrIOFailure // 5
	DecodingFailure     uint = types.ErrDecodingFailure
	InvalidNetConfig    uint = types.ErrInvalidNetworkConfig // 7
	TryAgainLater       uint = types.ErrTryAgainLater        // 11
	PluginNotAvailable  uint = types.ErrPluginNotAvailable   // 50
	Internal            uint = types.ErrInternal             // 999
)

// Plexus's own codes (100 and up are the plugin's to define).
const (
	// NetworkNotFound: a network that the configuration or the pod names
	// does not exist — no NetworkAttachmentDefinition, no configuration
	// file. The user's error, but not an invalid configuration: nothing
	// needs fixing once the network is created (ADDs retried after that
	// succeed), so it is kept apart from 7.
	NetworkNotFound uint = 100
)

// coded carries a CNI code through ordinary error wrapping.
type coded struct {
	code uint
	err  error
}

func (c *coded) Error() string { return c.err.Error() }
func (c *coded) Unwrap() error { return c.err }

// New returns an error marked with the given CNI code.
func New(code uint, format string, args ...any) error {
	return &coded{code: code, err: fmt.Errorf(format, args...)}
}

// Wrap marks err with a CNI code (nil stays nil). A mark inside err, if
// any, is kept: the most specific classification wins.
func Wrap(code uint, err error) error {
	if err == nil {
		return nil
	}
	return &coded{code: code, err: err}
}

// Code returns the CNI code of err, deciding in this order:
//
//  1. a delegate's *types.Error keeps the delegate's code;
//  2. a mark set with New or Wrap (the innermost one);
//  3. what the error is (see classify): a network not found, an invalid
//     value, undecodable JSON, an API or transport failure;
//  4. anything else is Internal (999).
//
// In a joined error the first member that has a code speaks for the join.
func Code(err error) uint {
	if code, by := decide(err); by != undecided {
		return code
	}
	return Internal
}

// How a code was decided; a later one in this list overrides an earlier.
const (
	undecided = iota
	byType
	byMark
	byDelegate
)

func decide(err error) (code uint, by int) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case *types.Error:
			return v.Code, byDelegate
		case *coded:
			code, by = v.code, byMark
		}
		if by == undecided {
			if c := classify(e); c != 0 {
				code, by = c, byType
			}
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				if c, b := decide(inner); b != undecided {
					if b >= by {
						return c, b
					}
					break
				}
			}
			break
		}
	}
	return code, by
}

// classify returns the code of one error in a chain by what it is, or 0.
func classify(e error) uint {
	if e == nad.ErrNotFound {
		return NetworkNotFound
	}
	if e == context.DeadlineExceeded || e == context.Canceled {
		return TryAgainLater // the request's time ran out, or plexusd is stopping
	}
	switch v := e.(type) {
	case *fielderr.Error:
		return InvalidNetConfig
	case *json.SyntaxError:
		return DecodingFailure
	case *url.Error, *net.OpError, *net.DNSError:
		return TryAgainLater // the API server could not be reached or did not answer
	case apierrors.APIStatus:
		return apiCode(v)
	}
	return 0
}

// apiCode classifies an API server's answer. What the server may answer
// differently soon — overload, timeouts, conflicts, 5xx, an object not (or
// no longer) there — is retryable; refused credentials or permissions are
// the operator's configuration (the kubeconfig and its RBAC).
func apiCode(s apierrors.APIStatus) uint {
	switch c := s.Status().Code; {
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		return InvalidNetConfig
	case c == http.StatusNotFound || c == http.StatusConflict || c == http.StatusTooManyRequests || c >= 500:
		return TryAgainLater
	}
	return 0
}

// ToCNI converts err into the *types.Error skel prints.
func ToCNI(err error) *types.Error {
	if err == nil {
		return nil
	}
	return types.NewError(Code(err), err.Error(), "")
}

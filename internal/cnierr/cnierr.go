// Package cnierr maps plexus failures to CNI error codes at the edge. Inner
// packages return ordinary wrapped errors; they mark the few conditions that
// need a specific code with the constructors here, and the plugin's command
// functions hand the result to skel, which prints it as a CNI error object.
package cnierr

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
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

// coded carries a CNI code through ordinary error wrapping.
type coded struct {
	code uint
	err  error
}

func (c *coded) Error() string { return c.err.Error() }
func (c *coded) Unwrap() error { return c.err }

// New returns an error with the given CNI code.
func New(code uint, format string, args ...any) error {
	return &coded{code: code, err: fmt.Errorf(format, args...)}
}

// Wrap attaches a CNI code to err (nil stays nil). An inner code, if any,
// is kept: the most specific classification wins.
func Wrap(code uint, err error) error {
	if err == nil {
		return nil
	}
	return &coded{code: code, err: err}
}

// Code returns the CNI code of err: the innermost code attached with New or
// Wrap, or the code of a *types.Error returned by a delegate, else Internal.
func Code(err error) uint {
	code, found := uint(0), false
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch v := e.(type) {
		case *coded:
			code, found = v.code, true
		case *types.Error:
			return v.Code
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				if c := Code(inner); c != Internal {
					return c
				}
			}
			break
		}
	}
	if found {
		return code
	}
	return Internal
}

// ToCNI converts err into the *types.Error skel prints.
func ToCNI(err error) *types.Error {
	if err == nil {
		return nil
	}
	return types.NewError(Code(err), err.Error(), "")
}

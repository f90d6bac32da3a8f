package plugin

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// withCode gives err the CNI code the runtime sees: the commands return
// *types.Error, which skel prints as it is (anything else would be 999).
// An error that already carries a code keeps it: the innermost
// classification is the most specific.
func withCode(code uint, err error) error {
	if err == nil {
		return nil
	}
	var inner *types.Error
	if errors.As(err, &inner) {
		if error(inner) == err {
			return err
		}
		code = inner.Code
	}
	return types.NewError(code, err.Error(), "")
}

// newError returns an error with a CNI code.
func newError(code uint, format string, args ...any) error {
	return types.NewError(code, fmt.Sprintf(format, args...), "")
}

// nopLogger is the log of a Plugin without OpenLog.
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Close() error          { return nil }

package cnierr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestCode(t *testing.T) {
	delegate := types.NewError(types.ErrInvalidNetworkConfig, "bad", "")
	tests := []struct {
		name string
		err  error
		want uint
	}{
		{"plain", errors.New("x"), Internal},
		{"coded", New(TryAgainLater, "x"), TryAgainLater},
		{"wrapped coded", fmt.Errorf("ctx: %w", New(InvalidEnv, "x")), InvalidEnv},
		{"innermost wins", Wrap(TryAgainLater, Wrap(InvalidNetConfig, errors.New("x"))), InvalidNetConfig},
		{"delegate error", Wrap(Internal, fmt.Errorf("net1: %w", delegate)), types.ErrInvalidNetworkConfig},
		{"joined", errors.Join(errors.New("a"), New(IOFailure, "b")), IOFailure},
	}
	for _, tc := range tests {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("%s: Code = %d, want %d", tc.name, got, tc.want)
		}
	}
	if ToCNI(nil) != nil {
		t.Error("ToCNI(nil) != nil")
	}
	if e := ToCNI(New(TryAgainLater, "api down")); e.Code != 11 || e.Msg != "api down" {
		t.Errorf("ToCNI = %+v", e)
	}
}

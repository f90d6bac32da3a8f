package cnierr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/nad"
)

var pods = schema.GroupResource{Resource: "pods"}

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
		// By type, when nothing is marked.
		{"network not found", fmt.Errorf("networks[0]: NetworkAttachmentDefinition ns/x: %w", nad.ErrNotFound), NetworkNotFound},
		{"invalid value", fmt.Errorf("ctx: %w", fielderr.New("networks[0].mac", "x", "bad")), InvalidNetConfig},
		{"not JSON", fmt.Errorf("config: %w", json.Unmarshal([]byte("{"), &struct{}{})), DecodingFailure},
		{"deadline", fmt.Errorf("get pod: %w", context.DeadlineExceeded), TryAgainLater},
		{"canceled", context.Canceled, TryAgainLater},
		{"connection refused", &url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, TryAgainLater},
		{"api not found", apierrors.NewNotFound(pods, "p"), TryAgainLater},
		{"api timeout", apierrors.NewTimeoutError("slow", 1), TryAgainLater},
		{"api server timeout", apierrors.NewServerTimeout(pods, "get", 1), TryAgainLater},
		{"api 429", apierrors.NewTooManyRequests("busy", 1), TryAgainLater},
		{"api 500", apierrors.NewInternalError(errors.New("boom")), TryAgainLater},
		{"api 503", apierrors.NewServiceUnavailable("down"), TryAgainLater},
		{"api conflict", apierrors.NewConflict(pods, "p", errors.New("rv")), TryAgainLater},
		{"api forbidden", apierrors.NewForbidden(pods, "p", errors.New("rbac")), InvalidNetConfig},
		{"api unauthorized", apierrors.NewUnauthorized("token"), InvalidNetConfig},
		{"api bad request", apierrors.NewBadRequest("x"), Internal},
		{"errno is not a transport error", fmt.Errorf("set route: %w", syscall.EPERM), Internal},
		// Marks win over types, delegates over marks.
		{"mark over type", Wrap(PluginNotAvailable, &url.Error{Op: "Post", URL: "http://plexusd", Err: errors.New("EOF")}), PluginNotAvailable},
		{"mark over a joined type", Wrap(IOFailure, errors.Join(fmt.Errorf("%w", nad.ErrNotFound), errors.New("b"))), IOFailure},
		{"joined: first member with a code", errors.Join(apierrors.NewServiceUnavailable("down"), fmt.Errorf("rollback: %w", delegate)), TryAgainLater},
		{"delegate over mark", Wrap(TryAgainLater, errors.Join(errors.New("a"), delegate)), types.ErrInvalidNetworkConfig},
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

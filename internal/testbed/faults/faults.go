// Package faults lets tests interrupt the writes a store client sends:
// an HTTP transport wrapper for clients of the Kubernetes API and a gRPC
// interceptor for etcd clients, both reporting every request that may
// change data to a Hook, which may fail it before it is sent or replace
// its reply after it was applied.
package faults

import (
	"context"
	"net/http"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// Hook is told about every write: Before may fail it (it is then not
// sent), After may replace the reply of a sent, successful write with an
// error (the write was applied, its reply lost).
type Hook interface {
	Before() error
	After() error
}

// Transport returns rt calling h around every request but GET (reads,
// lists and watches are left alone). Writes the API server refused are
// returned as they are, without After.
func Transport(rt http.RoundTripper, h Hook) http.RoundTripper {
	return transport{rt: rt, h: h}
}

type transport struct {
	rt http.RoundTripper
	h  Hook
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet {
		return t.rt.RoundTrip(r)
	}
	if err := t.h.Before(); err != nil {
		return nil, err
	}
	resp, err := t.rt.RoundTrip(r)
	if err != nil || resp.StatusCode >= 300 {
		return resp, err
	}
	if err := t.h.After(); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// EtcdInterceptor returns a gRPC interceptor calling h around every etcd
// request that may write: a put, a delete, or a transaction holding either
// (nested transactions included). Use it with grpc.WithChainUnaryInterceptor.
func EtcdInterceptor(h Hook) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if !isEtcdWrite(req) {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		if err := h.Before(); err != nil {
			return err
		}
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		return h.After()
	}
}

func isEtcdWrite(req any) bool {
	switch r := req.(type) {
	case *etcdserverpb.PutRequest, *etcdserverpb.DeleteRangeRequest:
		return true
	case *etcdserverpb.TxnRequest:
		for _, ops := range [][]*etcdserverpb.RequestOp{r.Success, r.Failure} {
			for _, op := range ops {
				if op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil || op.GetRequestTxn() != nil && isEtcdWrite(op.GetRequestTxn()) {
					return true
				}
			}
		}
	}
	return false
}

// Func adapts two functions to a Hook (nil: no effect).
type Func struct {
	BeforeFunc, AfterFunc func() error
}

// Before implements Hook.
func (f Func) Before() error {
	if f.BeforeFunc == nil {
		return nil
	}
	return f.BeforeFunc()
}

// After implements Hook.
func (f Func) After() error {
	if f.AfterFunc == nil {
		return nil
	}
	return f.AfterFunc()
}

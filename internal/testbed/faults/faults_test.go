package faults

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestTransport: GETs pass untouched; a write is failed unsent by Before,
// and has its reply replaced by After once applied.
func TestTransport(t *testing.T) {
	var served []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = append(served, r.Method)
	}))
	defer srv.Close()
	boom := errors.New("boom")
	var before, after error
	c := &http.Client{Transport: Transport(http.DefaultTransport, Func{
		BeforeFunc: func() error { return before }, AfterFunc: func() error { return after }})}
	do := func(method string) error {
		req, _ := http.NewRequest(method, srv.URL, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	before = boom
	if err := do(http.MethodGet); err != nil {
		t.Errorf("GET with a failing hook: %v, want it untouched", err)
	}
	if err := do(http.MethodPost); !errors.Is(err, boom) {
		t.Errorf("POST failed by Before: %v, want boom", err)
	}
	before, after = nil, boom
	if err := do(http.MethodDelete); !errors.Is(err, boom) {
		t.Errorf("DELETE with a lost reply: %v, want boom", err)
	}
	if got := len(served); got != 2 || served[0] != http.MethodGet || served[1] != http.MethodDelete {
		t.Errorf("served %v, want [GET DELETE] (the failed POST never sent)", served)
	}
}

func TestIsEtcdWrite(t *testing.T) {
	get := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestRange{RequestRange: &etcdserverpb.RangeRequest{}}}
	put := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestPut{RequestPut: &etcdserverpb.PutRequest{}}}
	nested := &etcdserverpb.RequestOp{Request: &etcdserverpb.RequestOp_RequestTxn{RequestTxn: &etcdserverpb.TxnRequest{Success: []*etcdserverpb.RequestOp{put}}}}
	for _, tc := range []struct {
		name string
		req  any
		want bool
	}{
		{"range", &etcdserverpb.RangeRequest{}, false},
		{"put", &etcdserverpb.PutRequest{}, true},
		{"delete", &etcdserverpb.DeleteRangeRequest{}, true},
		{"txn of gets", &etcdserverpb.TxnRequest{Success: []*etcdserverpb.RequestOp{get}, Failure: []*etcdserverpb.RequestOp{get}}, false},
		{"txn with a put on failure", &etcdserverpb.TxnRequest{Success: []*etcdserverpb.RequestOp{get}, Failure: []*etcdserverpb.RequestOp{put}}, true},
		{"nested txn with a put", &etcdserverpb.TxnRequest{Success: []*etcdserverpb.RequestOp{get, nested}}, true},
	} {
		if got := isEtcdWrite(tc.req); got != tc.want {
			t.Errorf("%s: isEtcdWrite = %v, want %v", tc.name, got, tc.want)
		}
	}
}

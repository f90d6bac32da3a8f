package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestValidateDevice(t *testing.T) {
	for _, tc := range []struct {
		name, conf, wantMsg string
	}{
		{"all three", `{"deviceID":"tn0","pciBusID":"tn0","runtimeConfig":{"deviceID":"tn0"}}`, ""},
		{"no deviceID", `{"pciBusID":"tn0","runtimeConfig":{"deviceID":"tn0"}}`, `config key "deviceID" is empty ("")`},
		{"no pciBusID", `{"deviceID":"tn0","runtimeConfig":{"deviceID":"tn0"}}`, `config key "pciBusID" is "", want the deviceID "tn0"`},
		{"other pciBusID", `{"deviceID":"tn0","pciBusID":"0000:ff:00.0","runtimeConfig":{"deviceID":"tn0"}}`,
			`config key "pciBusID" is "0000:ff:00.0", want the deviceID "tn0"`},
		{"no capability", `{"deviceID":"tn0","pciBusID":"tn0"}`, `config key "runtimeConfig.deviceID" is "", want the deviceID "tn0"`},
		{"other capability", `{"deviceID":"tn0","pciBusID":"tn0","runtimeConfig":{"deviceID":"tn1"}}`,
			`config key "runtimeConfig.deviceID" is "tn1", want the deviceID "tn0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := loadConf([]byte(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			err = validateDevice(conf)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("validateDevice: %v", err)
				}
				return
			}
			var cniErr *types.Error
			if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig || cniErr.Msg != tc.wantMsg {
				t.Fatalf("validateDevice = %#v, want code 7 with message %q", err, tc.wantMsg)
			}
		})
	}
}

func TestLoadConfRejectsBadJSON(t *testing.T) {
	_, err := loadConf([]byte(`{"deviceID":`))
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrDecodingFailure {
		t.Fatalf("loadConf = %v, want a decoding error", err)
	}
}

func TestWithKey(t *testing.T) {
	out, err := withKey([]byte(`{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:ff:00.1"}}`), "testnic-ifname", "net1")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	pci, _ := got["pci"].(map[string]any)
	if got["testnic-ifname"] != "net1" || got["type"] != "pci" || got["version"] != "1.1.0" || pci["pci-address"] != "0000:ff:00.1" {
		t.Fatalf("withKey = %s", out)
	}
	for _, bad := range []string{`[]`, `null`, `"x"`, `{`} {
		if _, err := withKey([]byte(bad), "k", "v"); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
			t.Errorf("withKey(%s) = %v, want a not-a-JSON-object error", bad, err)
		}
	}
}

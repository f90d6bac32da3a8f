// Package wire is the protocol between the plexus shim and plexusd on the
// daemon's unix socket: one HTTP POST of the CNI request (the runtime's
// CNI_* environment and the configuration it passed on stdin), answered
// with the result to print or a CNI error object carrying its code.
package wire

import (
	"encoding/json"

	"github.com/containernetworking/cni/pkg/types"
)

// Path is the one endpoint CNI requests are posted to.
const Path = "/cni"

// Request is one CNI invocation as the runtime made it.
type Request struct {
	// Command is CNI_COMMAND (ADD, DEL, CHECK, GC, STATUS).
	Command     string `json:"command"`
	ContainerID string `json:"containerID,omitempty"`
	Netns       string `json:"netns,omitempty"`
	IfName      string `json:"ifName,omitempty"`
	// Args is CNI_ARGS, Path is CNI_PATH, both verbatim.
	Args string `json:"args,omitempty"`
	Path string `json:"path,omitempty"`
	// Config is the network configuration from stdin, verbatim.
	Config json.RawMessage `json:"config"`
}

// Response is the daemon's answer: exactly one of Result and Error is set
// (neither for a successful command without output).
type Response struct {
	// Result is the ADD result, already in the configuration's cniVersion.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is the CNI error to print, with its code.
	Error *types.Error `json:"error,omitempty"`
}

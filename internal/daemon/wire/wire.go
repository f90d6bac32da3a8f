// Package wire is the protocol between the plexus shim and plexusd on the
// daemon's unix socket: one HTTP POST of the CNI request (the runtime's
// CNI_* environment and the configuration it passed on stdin), answered
// with the result to print or a CNI error object carrying its code. The
// plexus shim posts to Path; plexus-ipam, run by a delegate that plexusd
// started, posts to IPAMPath the socket named by SocketEnv.
package wire

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// Path is the endpoint the plexus shim posts CNI requests to.
const Path = "/cni"

// IPAMPath is the endpoint plexus-ipam posts its requests to; plexusd runs
// them in process with long-lived store clients.
const IPAMPath = "/ipam"

// SocketEnv is the environment variable plexusd sets, in the environment
// of every delegate it runs, to the path of its socket: plexus-ipam
// forwards to IPAMPath when it is set and the socket answers.
const SocketEnv = "PLEXUS_DAEMON_SOCKET"

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
	// Env holds the other environment variables the plugin reads, when
	// set (plexus-ipam: NODENAME, NODE_NAME).
	Env map[string]string `json:"env,omitempty"`
}

// Response is the daemon's answer: exactly one of Result and Error is set
// (neither for a successful command without output).
type Response struct {
	// Result is the ADD result, already in the configuration's cniVersion.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is the CNI error to print, with its code.
	Error *types.Error `json:"error,omitempty"`
}

// NewRequest is the request for one CNI invocation as skel parsed it.
func NewRequest(command string, args *skel.CmdArgs) *Request {
	return &Request{
		Command: command, ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName,
		Args: args.Args, Path: args.Path, Config: args.StdinData,
	}
}

// Deliver hands the daemon's answer to skel: its CNI error as it is, or its
// result written to w (what the plugin would have printed itself).
func (r *Response) Deliver(w io.Writer) error {
	if r.Error != nil {
		return r.Error
	}
	if len(r.Result) == 0 {
		return nil
	}
	if _, err := w.Write(r.Result); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("print the result: %v", err), "")
	}
	return nil
}

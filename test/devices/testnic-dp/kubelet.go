package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// registerTimeout bounds one Register call to kubelet.
const registerTimeout = 5 * time.Second

// server is the plugin's gRPC server on its unix socket.
type server struct {
	path string
	grpc *grpc.Server
}

// serve starts the DevicePlugin service on a fresh socket at path.
func serve(path string, p *plugin) (*server, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %q: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", path, err)
	}
	s := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(s, p)
	go func() { _ = s.Serve(lis) }() // returns when stop closes the listener
	return &server{path: path, grpc: s}, nil
}

// stop ends every stream and removes the socket.
func (s *server) stop() error {
	s.grpc.Stop()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove socket %q: %w", s.path, err)
	}
	return nil
}

// fileID identifies one incarnation of a file: a socket that kubelet
// recreates gets a new inode or change time.
type fileID struct {
	ino   uint64
	ctime syscall.Timespec
}

// socketID returns the identity of the file at path.
func socketID(path string) (fileID, error) {
	info, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("stat %q: no inode", path)
	}
	return fileID{ino: st.Ino, ctime: st.Ctim}, nil
}

// register announces the plugin to kubelet's Registration service at
// kubeletSock: API version v1beta1, the endpoint's file name in the plugin
// directory, and the resource name.
func register(ctx context.Context, kubeletSock, endpoint, resource string) error {
	conn, err := grpc.NewClient("unix://"+kubeletSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to kubelet at %q: %w", kubeletSock, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     endpoint,
		ResourceName: resource,
		Options:      &pluginapi.DevicePluginOptions{},
	})
	if err != nil {
		return fmt.Errorf("register %s with kubelet at %q: %w", resource, kubeletSock, err)
	}
	return nil
}

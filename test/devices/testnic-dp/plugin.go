package main

import (
	"context"
	"log"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-cni/plexus/test/devices/testnic"
)

// plugin implements the v1beta1 DevicePlugin service.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	resource string
	health   *health
	log      *log.Logger
}

// GetDevicePluginOptions reports that the plugin needs neither
// PreStartContainer nor GetPreferredAllocation.
func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the device list, then again on every health change,
// until kubelet or the server ends the stream.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, stream grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	p.log.Printf("ListAndWatch: kubelet is watching %s", p.resource)
	for {
		devs, changed := p.health.snapshot()
		if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
			p.log.Printf("ListAndWatch: send: %v", err)
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			p.log.Printf("ListAndWatch: stream closed: %v", stream.Context().Err())
			return nil
		}
	}
}

// GetPreferredAllocation expresses no preference.
func (p *plugin) GetPreferredAllocation(_ context.Context, req *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	resp := &pluginapi.PreferredAllocationResponse{}
	for range req.ContainerRequests {
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{})
	}
	return resp, nil
}

// Allocate accepts known devices and sets testnic.AllocEnv in each container.
func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, cr := range req.ContainerRequests {
		for _, id := range cr.DevicesIds {
			if !p.health.known(id) {
				p.log.Printf("Allocate: unknown device %q", id)
				return nil, status.Errorf(codes.InvalidArgument, "unknown device %q of %s", id, p.resource)
			}
		}
		ids := strings.Join(cr.DevicesIds, ",")
		p.log.Printf("Allocate: devices %s", ids)
		resp.ContainerResponses = append(resp.ContainerResponses,
			&pluginapi.ContainerAllocateResponse{Envs: map[string]string{testnic.AllocEnv: ids}})
	}
	return resp, nil
}

// PreStartContainer does nothing (the plugin does not ask for it).
func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

package testnic

import "testing"

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{SocketName(Resource), "plexus.dev-testnic.sock"},
		{DeviceInfoFileName(Resource, "veth-a"), "plexus.dev-testnic-veth-a-device.json"},
		{DeviceInfoFileName("a/b", "c/d"), "a-b-c-d-device.json"},
		{FakePCIAddress(0), "0000:ff:00.0"},
		{FakePCIAddress(7), "0000:ff:00.7"},
		{FakePCIAddress(8), "0000:ff:01.0"},
		{FakePCIAddress(MaxDevices - 1), "0000:ff:1f.7"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

package testbed

import "net/url"

// APIAddr returns the API server's host:port (on 127.0.0.1), for making it
// reachable from simulated nodes (nodesim.NodeOptions.Forward).
func (e *Env) APIAddr() string {
	u, err := url.Parse(e.RESTConfig.Host)
	if err != nil {
		return e.RESTConfig.Host
	}
	return u.Host
}

package discover_test

import (
	"context"
	"fmt"
	"net"

	"github.com/notp-go/notp/discover"
)

// headless answers like the DNS of a Kubernetes headless Service.
type headless struct{}

func (headless) LookupHost(ctx context.Context, host string) ([]string, error) {
	return []string{"10.0.0.1", "10.0.0.2"}, nil
}

func (headless) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	return name, []*net.SRV{{Target: "notp-0.notp.default.svc.cluster.local.", Port: 7946}}, nil
}

func ExampleFinder_Resolve() {
	f, _ := discover.New(discover.Config{Resolver: headless{}, DefaultPort: 7946})
	addrs, err := f.Resolve(context.Background(), []string{"notp.default.svc.cluster.local", "_notp._tcp.notp.default.svc.cluster.local"})
	fmt.Println(addrs, err)
	// Output: [10.0.0.1:7946 10.0.0.2:7946] <nil>
}

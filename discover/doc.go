// Package discover finds a cluster's seed nodes: it resolves seeds given
// as host:port, as DNS names that resolve to several addresses (a
// Kubernetes headless Service), or as SRV records
// (_notp._tcp.notp.default.svc.cluster.local), and retries with
// exponential backoff and jitter until a seed answers or the context
// ends.
//
// # Usage
//
//	f, _ := discover.New(discover.Config{DefaultPort: 7946})
//	err := f.Retry(ctx, []string{"notp.default.svc.cluster.local"}, func(ctx context.Context, addrs []string) error {
//		_, err := g.Join(addrs) // or anything that fails until a seed answers
//		return err
//	})
//
// The [Resolver] is an interface (net.Resolver by default) so tests can
// answer from a table.
//
// # Budgets
//
// At most [MaxSeeds] seeds, Config.MaxAddrs addresses (a DNS answer with
// more is cut), Config.LookupTimeout per lookup; a resolver's answers are
// checked (IPs parse, SRV targets are DNS names, ports are not 0) like
// any other input.
//
// # Concurrency
//
// A Finder is safe for concurrent use; Resolve and Retry block their
// caller (lookups run one after another on its goroutine) and end with
// ctx.
package discover

// clientv3-history: Txn clients through etcd's own Go client (clientv3,
// from Debian's golang-etcd-server-dev), for the cluster tests: each client
// is given every member's endpoint, so clientv3's balancer spreads its
// calls and fails over when a member dies, as an application's would.
//
// Each client runs, until stdin closes, either a read-only Txn of three
// keys or a Txn that reads two keys and puts unique values to two (the
// shapes of tests/compat/history_clients.py). Then every request goes to
// stdout as a JSON line: who, when (seconds since start), what it read and
// wrote, its revision and its outcome ("ok"; "fail" when etcd said nothing
// was written, "too many requests"; "info" when the outcome is unknown).
// The Python side checks the history with the project's checker.
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build (offline).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
)

type record struct {
	Client   string       `json:"client"`
	Invoke   float64      `json:"invoke"`
	Complete float64      `json:"complete"`
	ReadOnly bool         `json:"read_only"`
	Reads    [][2]*string `json:"reads"`
	Writes   [][2]string  `json:"writes"`
	Revision int64        `json:"revision"`
	Outcome  string       `json:"outcome"`
	Error    string       `json:"error,omitempty"`
}

func main() {
	endpoints := flag.String("endpoints", "", "every member's client address, comma-separated")
	clients := flag.Int("clients", 3, "concurrent clients")
	tag := flag.String("tag", "", "keeps this run's keys and values apart")
	timeout := flag.Duration("timeout", 5*time.Second, "per request")
	flag.Parse()
	eps := strings.Split(*endpoints, ",")
	if *endpoints == "" {
		fmt.Fprintln(os.Stderr, "clientv3-history: -endpoints is needed")
		os.Exit(2)
	}
	keys := make([]string, 8)
	for i := range keys {
		keys[i] = fmt.Sprintf("g%s/%d", *tag, i)
	}
	start := time.Now()
	since := func() float64 { return time.Since(start).Seconds() }

	stop := make(chan struct{})
	go func() { // stdin closing is the signal to stop
		bufio.NewReader(os.Stdin).ReadString(0)
		close(stop)
	}()

	var mu sync.Mutex
	var history []record
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		// Each client starts on a different member, and may go to any.
		own := append(append([]string{}, eps[c%len(eps):]...), eps[:c%len(eps)]...)
		cli, err := clientv3.New(clientv3.Config{Endpoints: own, DialTimeout: *timeout})
		if err != nil {
			fmt.Fprintln(os.Stderr, "clientv3-history:", err)
			os.Exit(1)
		}
		defer cli.Close()
		wg.Add(1)
		go func(c int, cli *clientv3.Client) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(2000 + c)))
			name := fmt.Sprintf("g%d", c)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r := record{Client: name, Invoke: since()}
				var ops []clientv3.Op
				perm := rng.Perm(len(keys))
				if rng.Float64() < 0.3 {
					r.ReadOnly = true
					for _, i := range perm[:3] {
						ops = append(ops, clientv3.OpGet(keys[i]))
					}
				} else {
					for _, i := range perm[:2] {
						ops = append(ops, clientv3.OpGet(keys[i]))
					}
					for j, i := range rng.Perm(len(keys))[:2] {
						v := fmt.Sprintf("%s%s-%d-%d", *tag, name, n, j)
						r.Writes = append(r.Writes, [2]string{keys[i], v})
						ops = append(ops, clientv3.OpPut(keys[i], v))
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				resp, err := cli.Txn(ctx).Then(ops...).Commit()
				cancel()
				r.Complete = since()
				switch {
				case err == nil:
					r.Outcome = "ok"
					r.Revision = resp.Header.Revision
					for i, op := range resp.Responses {
						rr := op.GetResponseRange()
						if rr == nil {
							continue
						}
						key := string(ops[i].KeyBytes())
						var value *string
						if len(rr.Kvs) > 0 {
							v := string(rr.Kvs[0].Value)
							value = &v
						}
						r.Reads = append(r.Reads, [2]*string{&key, value})
					}
				case err == rpctypes.ErrTooManyRequests:
					r.Outcome, r.Error = "fail", err.Error()
				default:
					r.Outcome, r.Error = "info", err.Error()
				}
				if err != nil && r.ReadOnly {
					time.Sleep(50 * time.Millisecond)
					continue // a read that failed says nothing
				}
				mu.Lock()
				history = append(history, r)
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(c, cli)
	}
	wg.Wait()
	out := json.NewEncoder(os.Stdout)
	for _, r := range history {
		out.Encode(r)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// clientFlags are shared by every command that talks to a cluster.
type clientFlags struct {
	endpoints string
	timeout   time.Duration
	logLevel  string
	tls       clientTLSFlags
}

// defaultEndpoints are the client ports of `make run`'s nodes.
const defaultEndpoints = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"

func (f *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.endpoints, "endpoints", defaultEndpoints, "client addresses of nodes (their --client-advertise), comma-separated; any one will do")
	f.tls.add(cmd.Flags())
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "off", "debug, info, warn, error or off")
}

func (f *clientFlags) endpointList() ([]string, error) {
	var eps []string
	for _, e := range strings.Split(f.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%w: --endpoints is empty", errUsage)
	}
	return eps, nil
}

func (f *clientFlags) dial(conns int) (*client.Client, error) {
	eps, err := f.endpointList()
	if err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	logger, err := loggerFor(f.logLevel)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := f.tls.config()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	c, err := client.New(client.Config{Endpoints: eps, Conns: conns, Logger: logger, TLS: tlsCfg})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

// withClient runs fn with a client and a context bounded by --timeout.
func (f *clientFlags) withClient(fn func(ctx context.Context, c *client.Client) error) error {
	c, err := f.dial(1)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	return fn(ctx, c)
}

func newPutCmd() *cobra.Command {
	var sequencer string
	cmd := clientCmd(&cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set a key (VALUE '-' reads standard input)",
		Args:  exactArgs(2),
	}, func(cmd *cobra.Command, args []string, _ *clientFlags) (clientRun, error) {
		val := []byte(args[1])
		if args[1] == "-" {
			b, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return nil, err
			}
			val = b
		}
		var seq *messages.Sequencer
		if sequencer != "" {
			var err error
			if seq, err = db.ParseSequencer(sequencer); err != nil {
				return nil, fmt.Errorf("%w: --sequencer: %v", errUsage, err)
			}
		}
		return func(ctx context.Context, c *client.Client) error {
			if seq != nil {
				res, err := c.Txn(ctx, &messages.MultiOp{Guard: []*messages.Test{db.SequencerHolds(seq)},
					TOp: []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte(args[0]), Value: val}}})
				if err != nil {
					return err
				}
				if !res.Succeeded {
					return fmt.Errorf("sequencer %s no longer holds its lock: not written", sequencer)
				}
			} else if err := c.Put(ctx, []byte(args[0]), val); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "OK")
			return nil
		}, nil
	})
	cmd.Flags().StringVar(&sequencer, "sequencer", "", "write only while this lock acquisition (a lock command's LIVEPAXOS_SEQUENCER) holds")
	return cmd
}

func newGetCmd() *cobra.Command {
	var consistency, prefix string
	var limit int
	cmd := clientCmd(&cobra.Command{
		Use:   "get KEY | get --prefix P [--limit N]",
		Short: "Print a key's value (exit status 1 if absent), or the keys under a prefix",
		Long: `Print a key's value. --consistency chooses the read (§5.2):
  lease   (default) linearizable, answered by the master from its lease
  quorum  linearizable, the master confirms mastership with a majority first
  stale   any node's state; how far behind it is goes to stderr

With --prefix P (no KEY), print every key that starts with P ("" for all
keys), in order, one "KEY<TAB>VALUE" line each, at most --limit N keys (0:
all). Each page of keys is read at one instance; a range larger than a page
is read page after page.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("prefix") {
				if len(args) != 0 {
					return fmt.Errorf("%w: get --prefix takes no KEY", errUsage)
				}
				return nil
			}
			if cmd.Flags().Changed("limit") {
				return fmt.Errorf("%w: --limit goes with --prefix", errUsage)
			}
			return exactArgs(1)(cmd, args)
		},
	}, func(cmd *cobra.Command, args []string, _ *clientFlags) (clientRun, error) {
		cons, err := client.ParseConsistency(consistency)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if limit < 0 {
			return nil, fmt.Errorf("%w: --limit %d: want 0 or more", errUsage, limit)
		}
		if cmd.Flags().Changed("prefix") {
			return func(ctx context.Context, c *client.Client) error {
				return printPrefix(ctx, cmd, c, []byte(prefix), limit, cons)
			}, nil
		}
		return func(ctx context.Context, c *client.Client) error {
			res, err := c.Read(ctx, db.Get([]byte(args[0])), cons)
			if err != nil {
				return err
			}
			if cons == client.Stale {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: applied %d, %d behind\n", res.Endpoint, res.Applied, res.Behind)
			}
			if len(res.Results) != 1 {
				return fmt.Errorf("get answered with %d results", len(res.Results))
			}
			v, found := res.Results[0].Value, res.Results[0].Found
			if !found {
				return fmt.Errorf("key %q not found", args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
			return nil
		}, nil
	})
	cmd.Flags().StringVar(&consistency, "consistency", "lease", "lease, quorum or stale")
	cmd.Flags().StringVar(&prefix, "prefix", "", "print the keys that start with this prefix")
	cmd.Flags().IntVar(&limit, "limit", 0, "with --prefix: at most this many keys (0: all)")
	return cmd
}

// printPrefix prints the keys under prefix page by page, at most limit
// (0: all).
func printPrefix(ctx context.Context, cmd *cobra.Command, c *client.Client, prefix []byte, limit int, cons client.Consistency) error {
	opts := client.RangeOptions{Prefix: true, Consistency: cons}
	from, printed := prefix, 0
	for {
		if limit > 0 {
			opts.Limit = limit - printed
		}
		page, err := c.Range(ctx, from, opts)
		if err != nil {
			return err
		}
		if cons == client.Stale {
			fmt.Fprintf(cmd.ErrOrStderr(), "applied %d\n", page.Applied)
		}
		for _, kv := range page.KVs {
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", kv.Key, kv.Value)
		}
		printed += len(page.KVs)
		if !page.More || (limit > 0 && printed >= limit) {
			return nil
		}
		// Continue from the next key, still bounded by the prefix.
		from, opts.Prefix, opts.End = page.Next, false, db.PrefixEnd(prefix)
	}
}

func newDelCmd() *cobra.Command {
	return clientCmd(&cobra.Command{
		Use:   "del KEY",
		Short: "Delete a key (prints whether it existed)",
		Args:  exactArgs(1),
	}, func(cmd *cobra.Command, args []string, _ *clientFlags) (clientRun, error) {
		return func(ctx context.Context, c *client.Client) error {
			existed, err := c.Delete(ctx, []byte(args[0]))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), map[bool]string{true: "deleted", false: "absent"}[existed])
			return nil
		}, nil
	})
}

func newCasCmd() *cobra.Command {
	var absent bool
	cmd := clientCmd(&cobra.Command{
		Use:   "cas KEY OLD NEW",
		Short: "Set KEY to NEW if it holds OLD (with --absent: KEY NEW, if KEY is absent); exit status 1 if not swapped",
		Args:  rangeArgs(2, 3),
	}, func(cmd *cobra.Command, args []string, _ *clientFlags) (clientRun, error) {
		var old, nv []byte
		switch {
		case absent && len(args) == 2:
			nv = []byte(args[1])
		case !absent && len(args) == 3:
			old, nv = []byte(args[1]), []byte(args[2])
		default:
			return nil, fmt.Errorf("%w: cas takes KEY OLD NEW, or KEY NEW with --absent", errUsage)
		}
		return func(ctx context.Context, c *client.Client) error {
			ok, cur, err := c.CompareAndSwap(ctx, []byte(args[0]), old, nv)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("not swapped: current value %q", cur)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "OK")
			return nil
		}, nil
	})
	cmd.Flags().BoolVar(&absent, "absent", false, "swap only if the key is absent")
	return cmd
}

// txnJSON is the JSON form of a MultiOp, for humans and scripts:
//
//	{"guard": [{"op": "equals", "key": "k", "value": "v"}],
//	 "then":  [{"op": "put", "key": "k", "value": "w"}],
//	 "else":  [{"op": "get", "key": "k"}]}
type txnJSON struct {
	Guard []txnItem `json:"guard"`
	Then  []txnItem `json:"then"`
	Else  []txnItem `json:"else"`
}

type txnItem struct {
	Op    string  `json:"op"`
	Key   string  `json:"key"`
	Value *string `json:"value,omitempty"`
}

// readTxnJSON reads txn --json's input: one MultiOp object, no unknown
// field, nothing after it (a second object or a truncated paste is a
// mistake, not something to ignore).
func readTxnJSON(r io.Reader) (txnJSON, error) {
	var t txnJSON
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, fmt.Errorf("%w: --json: %v", errUsage, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return t, fmt.Errorf("%w: --json: trailing input after the MultiOp", errUsage)
	}
	return t, nil
}

func newTxnCmd() *cobra.Command {
	var guards, thens, elses []string
	var jsonIn string
	cmd := clientCmd(&cobra.Command{
		Use:   "txn",
		Short: "Run one MultiOp: a guard, ops if it holds, ops if not",
		Long: `Run one MultiOp atomically. Give it with flags:
  --guard absent:KEY | present:KEY | equals:KEY=VALUE | epoch:N   (repeatable; all must hold;
          epoch:N holds while the master's epoch is N, as status shows it)
  --then  put:KEY=VALUE | del:KEY | get:KEY             (repeatable; run if the guard holds)
  --else  put:KEY=VALUE | del:KEY | get:KEY             (repeatable; run otherwise)
or as JSON with --json FILE ('-' for standard input):
  {"guard":[{"op":"equals","key":"k","value":"v"}],"then":[{"op":"put","key":"k","value":"w"}],"else":[]}
Prints the outcome and each result as JSON.`,
		Args: cobra.NoArgs,
	}, func(cmd *cobra.Command, _ []string, _ *clientFlags) (clientRun, error) {
		var t txnJSON
		if jsonIn != "" {
			if len(guards)+len(thens)+len(elses) > 0 {
				return nil, fmt.Errorf("%w: give the MultiOp with --json or with flags, not both", errUsage)
			}
			var r io.Reader = cmd.InOrStdin()
			if jsonIn != "-" {
				fh, err := os.Open(jsonIn)
				if err != nil {
					return nil, err
				}
				defer fh.Close()
				r = fh
			}
			var err error
			if t, err = readTxnJSON(r); err != nil {
				return nil, err
			}
		} else {
			var err error
			if t.Guard, err = parseItems(guards, true); err != nil {
				return nil, err
			}
			if t.Then, err = parseItems(thens, false); err != nil {
				return nil, err
			}
			if t.Else, err = parseItems(elses, false); err != nil {
				return nil, err
			}
		}
		op, err := t.multiOp()
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *client.Client) error {
			res, err := c.Txn(ctx, op)
			if err != nil {
				return err
			}
			return printTxnResult(cmd.OutOrStdout(), res)
		}, nil
	})
	cmd.Flags().StringArrayVar(&guards, "guard", nil, "a test: absent:KEY, present:KEY, equals:KEY=VALUE or epoch:N")
	cmd.Flags().StringArrayVar(&thens, "then", nil, "an op run if the guard holds: put:KEY=VALUE, del:KEY or get:KEY")
	cmd.Flags().StringArrayVar(&elses, "else", nil, "an op run otherwise")
	cmd.Flags().StringVar(&jsonIn, "json", "", "read the MultiOp as JSON from this file ('-': standard input)")
	return cmd
}

func parseItems(specs []string, guard bool) ([]txnItem, error) {
	var items []txnItem
	for _, s := range specs {
		kind, rest, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("%w: %q: want KIND:KEY or KIND:KEY=VALUE", errUsage, s)
		}
		it := txnItem{Op: kind, Key: rest}
		if kind == "put" || kind == "equals" {
			k, v, ok := strings.Cut(rest, "=")
			if !ok {
				return nil, fmt.Errorf("%w: %q: %s needs KEY=VALUE", errUsage, s, kind)
			}
			it.Key, it.Value = k, &v
		}
		items = append(items, it)
	}
	return items, nil
}

func (t txnJSON) multiOp() (*messages.MultiOp, error) {
	op := &messages.MultiOp{}
	for _, g := range t.Guard {
		test := &messages.Test{Key: []byte(g.Key)}
		switch g.Op {
		case "absent":
			test.Kind = messages.Test_KIND_ABSENT
		case "present":
			test.Kind = messages.Test_KIND_PRESENT
		case "equals":
			if g.Value == nil {
				return nil, fmt.Errorf("%w: equals test on %q needs a value", errUsage, g.Key)
			}
			test.Kind, test.Value = messages.Test_KIND_EQUALS, []byte(*g.Value)
		case "epoch": // §5.3: the key is the epoch number
			n, err := strconv.ParseUint(g.Key, 10, 64)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("%w: epoch test needs a positive epoch number, got %q", errUsage, g.Key)
			}
			test = db.EpochIs(n)
		default:
			return nil, fmt.Errorf("%w: unknown guard test %q (absent, present, equals, epoch)", errUsage, g.Op)
		}
		op.Guard = append(op.Guard, test)
	}
	var err error
	if op.TOp, err = opsOf(t.Then); err != nil {
		return nil, err
	}
	if op.FOp, err = opsOf(t.Else); err != nil {
		return nil, err
	}
	return op, nil
}

func opsOf(items []txnItem) ([]*messages.Op, error) {
	var ops []*messages.Op
	for _, it := range items {
		o := &messages.Op{Key: []byte(it.Key)}
		switch it.Op {
		case "put":
			if it.Value == nil {
				return nil, fmt.Errorf("%w: put of %q needs a value", errUsage, it.Key)
			}
			o.Kind, o.Value = messages.Op_KIND_PUT, []byte(*it.Value)
		case "del", "delete":
			o.Kind = messages.Op_KIND_DELETE
		case "get":
			o.Kind = messages.Op_KIND_GET
		default:
			return nil, fmt.Errorf("%w: unknown op %q (put, del, get)", errUsage, it.Op)
		}
		ops = append(ops, o)
	}
	return ops, nil
}

func printTxnResult(w io.Writer, res *messages.MultiOpResult) error {
	type result struct {
		Found bool   `json:"found"`
		Value string `json:"value,omitempty"`
	}
	out := struct {
		Succeeded bool     `json:"succeeded"`
		Results   []result `json:"results"`
	}{Succeeded: res.Succeeded, Results: []result{}}
	for _, r := range res.Results {
		out.Results = append(out.Results, result{Found: r.Found, Value: string(r.Value)})
	}
	enc := json.NewEncoder(w)
	return enc.Encode(out)
}

// rangeArgs is cobra.RangeArgs whose error is a usage error (exit 2).
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%w: %s takes %d to %d arguments, got %d", errUsage, cmd.Name(), lo, hi, len(args))
		}
		return nil
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%w: %s takes %d argument(s), got %d", errUsage, cmd.Name(), n, len(args))
		}
		return nil
	}
}

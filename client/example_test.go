package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/livepaxos/livepaxos/client"
	"github.com/livepaxos/livepaxos/db"
	"github.com/livepaxos/livepaxos/messages"
)

// A lock holder passes its sequencer along with what it writes; the write
// applies only while the acquisition still holds the lock, so a holder
// paused past its session cannot overwrite its successor's work.
func ExampleSession_Lock() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7101"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	s, err := c.NewSession(ctx, client.SessionOptions{TTL: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)
	l, err := s.Lock(ctx, "jobs/nightly", client.LockOptions{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := s.Txn(ctx, &messages.MultiOp{
		Guard: []*messages.Test{db.SequencerHolds(l.Sequencer())},
		TOp:   []*messages.Op{{Kind: messages.Op_KIND_PUT, Key: []byte("jobs/nightly/owner"), Value: []byte("me")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("written:", res.Succeeded)
	select {
	case <-l.Lost():
		fmt.Println("lost the lock:", s.Err())
	default:
		l.Unlock(ctx)
	}
}

// A watch delivers every change of a prefix once, in log order, across
// node failures.
func ExampleClient_Watch() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7101"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for u := range c.Watch(ctx, []byte("config/"), client.WatchOptions{Prefix: true}) {
		for _, e := range u.Events {
			fmt.Printf("%d %s deleted=%v %s\n", e.Instance, e.Key, e.Delete, e.Value)
		}
	}
}

// Leader election: the leader's value is under the election's key while
// it leads.
func ExampleSession_Campaign() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7101"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	s, err := c.NewSession(ctx, client.SessionOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)
	lead, err := s.Campaign(ctx, "service/primary", []byte("10.0.0.7:8080"))
	if err != nil {
		log.Fatal(err)
	}
	<-lead.Lost() // lead until the session ends
}

// Keys under a prefix, page by page, each page read at one instance.
func ExampleClient_Range() {
	c, err := client.New(client.Config{Endpoints: []string{"127.0.0.1:7101"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	prefix := []byte("users/")
	opts := client.RangeOptions{Prefix: true, Limit: 100}
	for from := prefix; ; {
		page, err := c.Range(ctx, from, opts)
		if err != nil {
			log.Fatal(err)
		}
		for _, kv := range page.KVs {
			fmt.Printf("%s = %s (version %d)\n", kv.Key, kv.Value, kv.Version)
		}
		if !page.More {
			break
		}
		from, opts.Prefix, opts.End = page.Next, false, db.PrefixEnd(prefix)
	}
}

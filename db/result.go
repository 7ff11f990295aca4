package db

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/livepaxos/livepaxos/messages"
)

// The size of a MultiOp's result (issue 15, item 4).
//
// A MultiOp of 1,024 GETs of 1 MiB values would answer 1 GiB: built in
// memory on every replica at Apply, kept in its session for retries, and
// too large for any message to carry. So a result is bounded.
//
// What is counted ("result bytes") is what a result carries that its
// request does not bound: the values of its GETs, the keys and values of
// its RANGEs (as MaxRangeBytes counts them), and the lock records of its
// LOCK_INFOs. The rest of the encoding is bounded by the op count alone
// (ResultFramingBytes).
//
// Whether a command applies must be the same on every replica, so the
// bound Apply enforces is the group's, chosen through the log with the
// value limit (KIND_SET_LIMITS max_result_bytes, `livepaxos limits set
// --max-result-bytes`). Once it is set, Apply refuses as a whole (nothing
// changed) a MultiOp whose GETs and LOCK_INFOs would carry more, with
// ErrResultTooLarge, and stops its RANGEs at what is left (a page cut
// short, with more and next_key, as MaxRangeBytes cuts one). Until the log
// sets one, Apply bounds nothing, as before, so an old log replays the
// same; each node then refuses at its door, before proposing, a MultiOp
// whose result its own state says would exceed DefaultMaxResultBytes
// (CheckResult), and bounds the reads it serves outside the log (Query) by
// it: neither can make replicas differ.

// Result limits.
const (
	// MinResultBytes is the smallest result limit a group may set: one
	// GET of the largest value, or one range's first key with it, always
	// fits.
	MinResultBytes = MaxValueBytesCeiling + CommandOverheadBytes
	// MaxResultBytesCeiling is the largest result limit a group may set:
	// with ResultFramingBytes around it, an answer fits in one message
	// of the client port (server.MaxMessageBytes, 16 MiB), which a test
	// there checks.
	MaxResultBytesCeiling = 8 << 20
	// DefaultMaxResultBytes bounds the results of a group whose log set
	// no result limit, at each node's door and in the reads it serves
	// outside the log.
	DefaultMaxResultBytes = MaxResultBytesCeiling
	// ResultFramingBytes bounds what a result's encoding adds to its
	// result bytes: per op its OpResult's fields and a range's next_key
	// (a key), per range key its KeyValue's metadata.
	ResultFramingBytes = DefaultMaxOps*(opResultFramingBytes+DefaultMaxKeyBytes) +
		DefaultMaxRangeKeys*keyValueFramingBytes
)

const (
	// opResultFramingBytes: an OpResult's tag and length, found, the
	// value's tag and length, and six varints (instances, version, owner,
	// session), with room to spare.
	opResultFramingBytes = 128
	// keyValueFramingBytes: a KeyValue's tag and length, the tags and
	// lengths of its key and value, and four varints.
	keyValueFramingBytes = 64
	// lockHolderBytes bounds what one LOCK op adds to a lock record a
	// later LOCK_INFO of the same MultiOp reads: one LockHolder (four
	// varints and their tags) and its framing.
	lockHolderBytes = 64
)

// ErrResultTooLarge refuses a MultiOp whose result would carry more than
// the result limit: nothing was changed. Split it, or page its ranges.
var ErrResultTooLarge = codedError{errors.New("db: result too large"),
	messages.ErrorCode_ERROR_CODE_RESULT_TOO_LARGE}

// resultLimit is the bound execute puts on a result (0: none; callers
// hold kv.mu). A write is bounded by the group's limit alone, the same on
// every replica; a read served outside the log (write false) by the
// group's or, with none, DefaultMaxResultBytes.
func (kv *KV) resultLimit(write bool) int {
	switch {
	case kv.group.ResultSet():
		return kv.group.MaxResultBytes
	case write:
		return 0
	}
	return DefaultMaxResultBytes
}

// resultWhose names the limit resultLimit returned, for its error.
func (kv *KV) resultWhose() string {
	if kv.group.ResultSet() {
		return "the group's"
	}
	return "the default"
}

// checkResult refuses ops when the result bytes of their GETs and
// LOCK_INFOs would exceed limit (> 0), and otherwise returns what is left
// for their RANGEs (callers hold kv.mu).
func (kv *KV) checkResult(ops []*messages.Op, limit int, whose string) (left int, err error) {
	n := kv.resultBytes(ops)
	if n > limit {
		return 0, fmt.Errorf("%w: its gets and lock reads would answer %d bytes, over %s limit of %d: split it",
			ErrResultTooLarge, n, whose, limit)
	}
	return limit - n, nil
}

// resultBytes is an upper bound on the result bytes of the GETs and
// LOCK_INFOs of ops run in order against the current state (callers hold
// kv.mu). It is exact for GETs, seeing the list's own earlier PUTs and
// DELETEs, save that a key its session's close would delete counts as
// present; a LOCK_INFO counts the lock's record now plus a holder for
// each LOCK before it.
func (kv *KV) resultBytes(ops []*messages.Op) int {
	reads := false
	for _, o := range ops {
		if o.Kind == messages.Op_KIND_GET || o.Kind == messages.Op_KIND_LOCK_INFO {
			reads = true
			break
		}
	}
	if !reads {
		return 0
	}
	var own map[string]int // the list's writes so far: the value's size, -1 deleted
	n, locks := 0, 0
	for _, o := range ops {
		switch o.Kind {
		case messages.Op_KIND_PUT, messages.Op_KIND_DELETE:
			if own == nil {
				own = make(map[string]int)
			}
			size := -1
			if o.Kind == messages.Op_KIND_PUT {
				size = len(o.Value)
			}
			own[string(o.Key)] = size
		case messages.Op_KIND_GET:
			if size, ok := own[string(o.Key)]; ok {
				n += max(size, 0)
			} else if e, ok := kv.get(string(o.Key)); ok {
				n += len(e.value)
			}
		case messages.Op_KIND_LOCK:
			locks++
		case messages.Op_KIND_LOCK_INFO:
			if l, ok := kv.locks[string(o.Key)]; ok {
				n += proto.Size(l)
			} else if locks > 0 {
				n += len(o.Key) + lockHolderBytes
			}
			n += locks * lockHolderBytes
		}
	}
	return n
}

// CheckResult is the door check of a MultiOp's result: it refuses, with
// ErrResultTooLarge, a MultiOp whose GETs and LOCK_INFOs would answer more
// than the group's result limit or, while the log set none,
// DefaultMaxResultBytes, judged against this node's state now (whichever
// of t_op and f_op runs). It is a refusal before proposing, never a
// verdict of Apply: the state may change before the MultiOp applies.
func (kv *KV) CheckResult(op *messages.MultiOp) error {
	limit, whose := int(kv.doorResult.Load()), "the group's"
	if limit == 0 {
		limit, whose = DefaultMaxResultBytes, "the default"
	}
	// Most MultiOps have too few GETs to matter (no value is larger than
	// the ceiling) and no LOCK_INFO: no need to look.
	gets, lockInfo := 0, false
	for _, list := range [][]*messages.Op{op.GetTOp(), op.GetFOp()} {
		for _, o := range list {
			switch o.GetKind() {
			case messages.Op_KIND_GET:
				gets++
			case messages.Op_KIND_LOCK_INFO:
				lockInfo = true
			}
		}
	}
	if !lockInfo && gets*MaxValueBytesCeiling <= limit {
		return nil
	}
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	for _, list := range [][]*messages.Op{op.GetTOp(), op.GetFOp()} {
		if _, err := kv.checkResult(list, limit, whose); err != nil {
			return err
		}
	}
	return nil
}

// CheckResultEncoded is CheckResult for an encoded MultiOp, as a proposer
// gets it. A MultiOp with too few ops to matter is passed on its bytes,
// without decoding; one that does not decode is left to the validator.
func (kv *KV) CheckResultEncoded(b []byte) error {
	limit := int(kv.doorResult.Load())
	if limit == 0 {
		limit = DefaultMaxResultBytes
	}
	if fewReads(b, limit/MaxValueBytesCeiling) {
		return nil
	}
	op := new(messages.MultiOp)
	if err := proto.Unmarshal(b, op); err != nil {
		return nil
	}
	return kv.CheckResult(op)
}

// fewReads reports whether the MultiOp encoded in b has at most max ops
// in t_op and f_op together and no LOCK_INFO. false means only "not shown
// here".
func fewReads(b []byte, max int) bool {
	n := 0
	return eachField(b, func(num protowire.Number, typ protowire.Type, field []byte) bool {
		if num != 2 && num != 3 { // t_op, f_op
			return true
		}
		if n++; n > max || typ != protowire.BytesType {
			return false
		}
		o, _ := protowire.ConsumeBytes(field)
		return opKind(o) != messages.Op_KIND_LOCK_INFO
	})
}

// opKind is the kind of the encoded op o (its last kind field, as proto
// decoding takes it; KIND_GET, the zero value, when it has none).
func opKind(o []byte) messages.Op_Kind {
	kind := messages.Op_KIND_GET
	eachField(o, func(num protowire.Number, typ protowire.Type, field []byte) bool {
		if num == 1 && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(field)
			kind = messages.Op_Kind(int32(v))
		}
		return true
	})
	return kind
}

// eachField calls fn with each top-level field of the encoded message b
// (field holds its value's bytes) until fn returns false; it reports
// whether every field was read and accepted.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, field []byte) bool) bool {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return false
		}
		b = b[l:]
		l = protowire.ConsumeFieldValue(num, typ, b)
		if l < 0 || !fn(num, typ, b[:l]) {
			return false
		}
		b = b[l:]
	}
	return true
}

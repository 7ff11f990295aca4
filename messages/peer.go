package messages

import (
	"hash/fnv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// PeerMessage is what every protocol message between replicas has: the
// node that says it sent it and the group it belongs to (ClusterHash of
// the cluster id).
type PeerMessage interface {
	proto.Message
	GetFrom() uint32
	GetCluster() uint64
}

// ClusterHash is the number a group's messages carry for its cluster id
// (FNV-1a, 64 bits): enough to keep two groups that share a network, or a
// node started with the wrong --cluster-id, from mixing their logs; not a
// secret (peer mTLS is what keeps strangers out).
func ClusterHash(clusterID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(clusterID))
	return h.Sum64()
}

// StampCluster sets the cluster field of a peer message; other messages
// are left alone. The same message may be stamped for several recipients:
// it is always the same value, set before the message leaves the core.
func StampCluster(msg proto.Message, cluster uint64) {
	switch m := msg.(type) {
	case *Prepare:
		m.Cluster = cluster
	case *Promise:
		m.Cluster = cluster
	case *Accept:
		m.Cluster = cluster
	case *Accepted:
		m.Cluster = cluster
	case *Confirm:
		m.Cluster = cluster
	case *Confirmed:
		m.Cluster = cluster
	case *Chosen:
		m.Cluster = cluster
	case *Heartbeat:
		m.Cluster = cluster
	case *PreVote:
		m.Cluster = cluster
	case *PreVoted:
		m.Cluster = cluster
	case *CatchupRequest:
		m.Cluster = cluster
	case *CatchupResponse:
		m.Cluster = cluster
	case *ChecksumReport:
		m.Cluster = cluster
	case *SnapshotChunkRequest:
		m.Cluster = cluster
	case *SnapshotChunk:
		m.Cluster = cluster
	case *Handover:
		m.Cluster = cluster
	case *Leaving:
		m.Cluster = cluster
	}
}

// SenderField is the field number of the node id a peer message type says
// its sender is (its "from"), 0 for a type that claims none (forwarded
// client requests, status and check requests). The peer port's guard
// matches that claim against the node id the sending connection's
// certificate is bound to (cluster.Options.SenderField).
func SenderField(name protoreflect.FullName) protowire.Number {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		return 0
	}
	if _, ok := mt.Zero().Interface().(PeerMessage); !ok {
		return 0
	}
	if fd := mt.Descriptor().Fields().ByName("from"); fd != nil && fd.Kind() == protoreflect.Uint32Kind {
		return fd.Number()
	}
	return 0
}

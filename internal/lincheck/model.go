package lincheck

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/anishathalye/porcupine"
)

// pending is the return time of a write whose outcome is unknown: later than
// every other time of the history, so the write may take effect anywhere after
// its call, including after everything else, which is the same as never.
const pending = math.MaxInt64

// input is the argument of an operation on one register.
type input struct {
	set   bool
	value string // for a set
}

// register is the state of one key, and the output of a get.
type register struct {
	found bool
	value string
}

func (r register) String() string {
	if !r.found {
		return "absent"
	}
	return fmt.Sprintf("%q", r.value)
}

// registerModel is the sequential specification of one key: a register that
// starts absent, that a set overwrites and a get reads.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return register{} },
		Step: func(state, in, out any) (bool, any) {
			st, op := state.(register), in.(input)
			if op.set {
				return true, register{found: true, value: op.value}
			}
			return out.(register) == st, st
		},
		Hash: func(state any) uint64 {
			h := fnv.New64a()
			h.Write([]byte(state.(register).value))
			return h.Sum64()
		},
		DescribeOperation: func(in, out any) string {
			op := in.(input)
			if op.set {
				return fmt.Sprintf("set(%q)", op.value)
			}
			return "get() = " + out.(register).String()
		},
		DescribeState: func(state any) string { return state.(register).String() },
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return info.(string)
		},
	}
}

// operations converts the operations of one key to porcupine's form. Failed
// reads are left out; failed writes never return.
func operations(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		p := porcupine.Operation{ClientId: o.Client, Call: o.Call, Return: o.Return}
		switch {
		case o.Kind == Set:
			p.Input, p.Output = input{set: true, value: o.Value}, register{}
			if o.Err != "" {
				p.Return = pending
				p.Metadata = fmt.Sprintf("failed at %d ns, outcome unknown: %s", o.Return, o.Err)
			}
		case o.Err != "":
			continue
		default:
			p.Input, p.Output = input{}, register{found: o.Found, value: o.Value}
		}
		out = append(out, p)
	}
	return out
}

// Package textout renders the JSON data of a node's reply as text for
// people (notp-cli's --format text and shell). It is apart from package
// main, whose test binary links whole cluster nodes (memberlist, Raft,
// Prometheus), so that its fuzz target does not pay on every execution
// for the coverage counters of all that code.
package textout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
)

// jvalue is a JSON value with the order of object keys kept.
type jvalue struct {
	scalar string   // the value as text, for strings, numbers, booleans, null
	keys   []string // object keys in order (object when isObj)
	vals   []jvalue // object values, or list elements (list when isList)
	isObj  bool
	isList bool
}

// MaxDepth bounds the nesting Write follows; deeper data is refused with
// ErrTooDeep.
const MaxDepth = 32

// ErrTooDeep is Write's error for data nested deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("textout: nesting deeper than %d", MaxDepth)

// Write writes the JSON value data to b as text: a table when it is a
// list of objects, "key  value" lines when it is an object (nested objects
// and lists indented below their key), and a plain value otherwise; every
// line ends in a newline. Object keys keep their order. Invalid JSON and
// data nested deeper than MaxDepth are errors, and then b may hold a part
// of the text.
func Write(b *bytes.Buffer, data []byte) error {
	v, err := decodeOrdered(data)
	if err != nil {
		return err
	}
	writeText(b, v, "")
	return nil
}

// decodeOrdered parses JSON keeping object key order.
func decodeOrdered(data []byte) (jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return decodeValue(dec, 0)
}

func decodeValue(dec *json.Decoder, depth int) (jvalue, error) {
	if depth > MaxDepth {
		return jvalue{}, ErrTooDeep
	}
	tok, err := dec.Token()
	if err != nil {
		return jvalue{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		v := jvalue{isObj: t == '{', isList: t == '['}
		for dec.More() {
			if v.isObj {
				k, err := dec.Token()
				if err != nil {
					return jvalue{}, err
				}
				ks, _ := k.(string)
				v.keys = append(v.keys, ks)
			}
			e, err := decodeValue(dec, depth+1)
			if err != nil {
				return jvalue{}, err
			}
			v.vals = append(v.vals, e)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return jvalue{}, err
		}
		return v, nil
	case string:
		return jvalue{scalar: t}, nil
	case json.Number:
		return jvalue{scalar: t.String()}, nil
	case bool:
		return jvalue{scalar: fmt.Sprint(t)}, nil
	default:
		return jvalue{scalar: "-"}, nil // null
	}
}

// inline renders v on one line: a scalar as is, a list of scalars joined
// by commas, anything else as compact JSON-like text.
func (v jvalue) inline() string {
	switch {
	case v.isObj:
		parts := make([]string, len(v.keys))
		for i, k := range v.keys {
			parts[i] = k + "=" + v.vals[i].inline()
		}
		return "{" + strings.Join(parts, " ") + "}"
	case v.isList:
		if len(v.vals) == 0 {
			return "(none)"
		}
		parts := make([]string, len(v.vals))
		for i, e := range v.vals {
			parts[i] = e.inline()
		}
		return strings.Join(parts, ",")
	}
	return v.scalar
}

// isTable reports whether v is a non-empty list of objects.
func (v jvalue) isTable() bool {
	if !v.isList || len(v.vals) == 0 {
		return false
	}
	for _, e := range v.vals {
		if !e.isObj {
			return false
		}
	}
	return true
}

// writeText writes v with every line prefixed by indent.
func writeText(b *bytes.Buffer, v jvalue, indent string) {
	switch {
	case v.isTable():
		var cols []string
		for _, e := range v.vals {
			for _, k := range e.keys {
				if !slices.Contains(cols, k) {
					cols = append(cols, k)
				}
			}
		}
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, indent+strings.ToUpper(strings.Join(cols, "\t"))+"\n")
		for _, e := range v.vals {
			cells := make([]string, len(cols))
			for i, c := range cols {
				cells[i] = "-"
				if j := slices.Index(e.keys, c); j >= 0 {
					cells[i] = e.vals[j].inline()
				}
			}
			fmt.Fprint(tw, indent+strings.Join(cells, "\t")+"\n")
		}
		tw.Flush()
	case v.isObj:
		if len(v.keys) == 0 {
			b.WriteString(indent + "(none)\n")
			return
		}
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		for i, k := range v.keys {
			e := v.vals[i]
			if e.isTable() || (e.isObj && len(e.keys) > 0) {
				tw.Flush()
				b.WriteString(indent + k + ":\n")
				writeText(b, e, indent+"  ")
				continue
			}
			fmt.Fprintf(tw, "%s%s\t%s\n", indent, k, e.inline())
		}
		tw.Flush()
	case v.isList:
		if len(v.vals) == 0 {
			b.WriteString(indent + "(none)\n")
		}
		for _, e := range v.vals {
			b.WriteString(indent + e.inline() + "\n")
		}
	default:
		b.WriteString(indent + v.scalar + "\n")
	}
}

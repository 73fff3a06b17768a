package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// FieldError is a problem with one field of a config.
type FieldError struct {
	// Field is the field's path as written in the JSON: "buckets",
	// "timeouts.probe", "nodes[0].addr".
	Field string
	// Problem says what is wrong with the field.
	Problem string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Problem }

// badField returns a *FieldError.
func badField(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// decodeFields decodes the JSON value data into v, which must be addressable, and
// returns every problem it meets, each naming its field: unknown fields, values of
// the wrong type and values their type refuses (a bad duration). A field with a
// problem keeps the value v had; null leaves a field as it was.
func decodeFields(data []byte, v reflect.Value, path string) []error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	t := v.Type()
	_, custom := v.Addr().Interface().(json.Unmarshaler)
	switch {
	case !custom && t.Kind() == reflect.Struct:
		return decodeObject(data, v, path)
	case !custom && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return []error{badField(path, "expected an array, got JSON %s", jsonKind(data))}
		}
		v.Set(reflect.MakeSlice(t, len(items), len(items)))
		var errs []error
		for i, item := range items {
			errs = append(errs, decodeFields(item, v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	}
	if err := json.Unmarshal(data, v.Addr().Interface()); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return []error{badField(path, "expected %s, got JSON %s", t, typ.Value)}
		}
		return []error{&FieldError{Field: path, Problem: err.Error()}}
	}
	return nil
}

// decodeObject decodes a JSON object into the struct v, field by field, in the
// order of the JSON.
func decodeObject(data []byte, v reflect.Value, path string) []error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return []error{badField(pathOr(path, "(top level)"), "expected an object, got JSON %s", jsonKind(data))}
	}
	fields, names := jsonFields(v.Type())
	var errs []error
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return append(errs, badField(pathOr(path, "(top level)"), "invalid JSON: %v", err))
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return append(errs, badField(join(path, key), "invalid JSON: %v", err))
		}
		i, ok := fields[key]
		if !ok {
			errs = append(errs, badField(join(path, key), "unknown field %q: not a dht config field (%s has %s)",
				key, pathOr(path, "the top level"), strings.Join(names, ", ")))
			continue
		}
		errs = append(errs, decodeFields(raw, v.Field(i), join(path, key))...)
	}
	return errs
}

// jsonFields maps the JSON names of t's fields to their indices, and lists the names
// in the order of the struct.
func jsonFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = i
		names = append(names, name)
	}
	return fields, names
}

// jsonKind names the kind of a JSON value, as encoding/json does in its errors.
func jsonKind(data []byte) string {
	b := bytes.TrimSpace(data)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathOr(path, top string) string {
	if path == "" {
		return top
	}
	return path
}

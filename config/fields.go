package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Field is one setting of a Config, found through its struct tags.
type Field struct {
	Key     string // dotted TOML key, such as "api.listen"
	Flag    string // command-line flag name without dashes; empty for file-only keys
	Usage   string
	Section string // TOML table the key is in; empty for the top level
	value   reflect.Value
}

// Env is the environment variable that sets the field: ARBOR_ and the flag
// name in upper case with underscores.
func (f Field) Env() string {
	if f.Flag == "" {
		return ""
	}
	return "ARBOR_" + strings.ToUpper(strings.ReplaceAll(f.Flag, "-", "_"))
}

// Value returns the field's current value.
func (f Field) Value() any { return f.value.Interface() }

// Set stores v, which must have the field's type or one convertible to it
// (time.Duration for a Duration field, say).
func (f Field) Set(v any) {
	rv := reflect.ValueOf(v)
	f.value.Set(rv.Convert(f.value.Type()))
}

// SetString parses s as the field's type and stores it. Lists are
// comma-separated.
func (f Field) SetString(s string) error {
	switch p := f.value.Addr().Interface().(type) {
	case *string:
		*p = s
	case *bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		*p = v
	case *int:
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		*p = v
	case *float64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		*p = v
	case *Duration:
		return p.UnmarshalText([]byte(s))
	case *[]string:
		*p = splitList(s)
	default:
		return fmt.Errorf("type %s cannot be set from text", f.value.Type())
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// Fields lists every setting of c in declaration order. The returned fields
// write through to c.
func Fields(c *Config) []Field {
	var out []Field
	walk(reflect.ValueOf(c).Elem(), "", &out)
	return out
}

var durationType = reflect.TypeOf(Duration(0))

func walk(v reflect.Value, section string, out *[]Field) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key := sf.Tag.Get("toml")
		if key == "" || key == "-" {
			continue
		}
		full := key
		if section != "" {
			full = section + "." + key
		}
		fv := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
			walk(fv, full, out)
			continue
		}
		*out = append(*out, Field{
			Key: full, Flag: sf.Tag.Get("flag"), Usage: sf.Tag.Get("usage"),
			Section: section, value: fv,
		})
	}
}

// Lookup returns the field with the given dotted key.
func Lookup(c *Config, key string) (Field, bool) {
	for _, f := range Fields(c) {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// trim keeps the kept resource types, their list*() functions and what they reach, in order,
// renumbering the references.
func TestTrim(t *testing.T) {
	src := `[
  {"$type": "StringType"},
  {"$type": "StringLiteralType", "value": "unused"},
  {"$type": "ObjectType", "name": "Body", "properties": {"name": {"type": {"$ref": "#/0"}, "flags": 9, "description": "a \"$ref\": \"#/1\" in a description is not a reference"}, "p": {"type": {"$ref": "#/4"}, "flags": 0}}},
  {"$type": "ResourceType", "name": "Microsoft.Other/things@2020-01-01", "body": {"$ref": "#/1"}},
  {"$type": "ArrayType", "itemType": {"$ref": "#/0"}},
  {"$type": "ResourceType", "name": "Microsoft.X/ys@2024-01-01", "body": {"$ref": "#/2"}},
  {"$type": "ObjectType", "name": "Keys", "properties": {"k": {"type": {"$ref": "#/0"}, "flags": 2}}},
  {"$type": "ResourceFunctionType", "name": "listKeys", "resourceType": "Microsoft.X/ys", "apiVersion": "2024-01-01", "output": {"$ref": "#/6"}}
]`
	out, kept, err := trim([]byte(src), map[string]bool{"microsoft.x/ys@2024-01-01": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0] != "Microsoft.X/ys@2024-01-01" {
		t.Errorf("kept %v", kept)
	}
	var entries []map[string]any
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range entries {
		kinds = append(kinds, e["$type"].(string))
	}
	if got := strings.Join(kinds, ","); got != "StringType,ObjectType,ArrayType,ResourceType,ObjectType,ResourceFunctionType" {
		t.Errorf("kept entries %s", got)
	}
	// Quotes inside strings are escaped, so the text of a description never looks like a reference.
	for _, want := range []string{`a \"$ref\": \"#/1\" in a description is not a reference`, `"body": {
      "$ref": "#/1"
    }`, `"itemType": {
      "$ref": "#/0"
    }`, `"output": {
      "$ref": "#/4"
    }`, `"p": {
        "type": {
          "$ref": "#/2"
        }`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if _, _, err := trim([]byte(`[{"$type": "ArrayType", "itemType": {"$ref": "#/7"}}, {"$type": "ResourceType", "name": "A/b@1", "body": {"$ref": "#/0"}}]`), map[string]bool{"a/b@1": true}); err == nil {
		t.Error("a reference out of range: no error")
	}
}

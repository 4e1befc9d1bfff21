package bicepcheck

// The resource type definitions the Bicep compiler itself uses, read from testdata/types: the
// types.json files of Azure/bicep-types-az (Azure resource providers) and
// microsoftgraph/msgraph-bicep-types (the Microsoft Graph extension), trimmed by
// cmd/trimtypes to the resource types and API versions infra/ declares. The format is the one
// Azure/bicep-types emits: a JSON array of types, each {"$type": kind, …}, referring to each other
// as {"$ref": "#/<index>"}.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ObjectTypePropertyFlags of Azure/bicep-types (src/bicep-types/src/types.ts).
const (
	FlagRequired           = 1 << 0
	FlagReadOnly           = 1 << 1
	FlagWriteOnly          = 1 << 2
	FlagDeployTimeConstant = 1 << 3
	FlagIdentifier         = 1 << 4
)

// Type is one type of a definition file, its references resolved.
type Type struct {
	Kind       string // any, null, bool, int, string, literal, object, array, union, discriminated, function
	Name       string // object and discriminated types: the generator's name
	Value      string // literal: the string value
	Props      map[string]*PropDef
	Additional *Type // object: the type of properties not in Props (nil: none allowed)
	Sensitive  bool  // string or object: a secret (@secure() in Bicep terms)
	MinLength  *int64
	MaxLength  *int64
	MinValue   *int64
	MaxValue   *int64
	Pattern    string
	Item       *Type               // array
	Elements   []*Type             // union
	Discrim    string              // discriminated: the discriminator property
	Base       map[string]*PropDef // discriminated: the properties every variant has
	Variants   map[string]*Type    // discriminated: discriminator value → object type (without Base)
}

// PropDef is a property of an object type.
type PropDef struct {
	Name        string
	Type        *Type
	Flags       int
	Description string
}

// ResourceDef is a resource type at one API version.
type ResourceDef struct {
	Name     string // Microsoft.X/y@version, as the definition spells it
	Body     *Type
	ReadOnly bool   // no writable scope (Azure) or flagged read-only (Graph): only `existing` may declare it
	File     string // the definition file, relative to the types folder
}

// Manifest describes testdata/types: where each trimmed file came from.
type Manifest struct {
	Comment string           `json:"comment"`
	Sources []ManifestSource `json:"sources"`
	Files   []ManifestFile   `json:"files"`
}

// ManifestSource is a repository the definitions came from.
type ManifestSource struct {
	Repo    string `json:"repo"`
	Commit  string `json:"commit"`
	License string `json:"license"`
}

// ManifestFile is one trimmed types.json.
type ManifestFile struct {
	File      string   `json:"file"`      // relative to the types folder
	Repo      string   `json:"repo"`      // source repository
	Path      string   `json:"path"`      // source path in that repository
	Blob      string   `json:"blob"`      // git blob id of the source file
	Resources []string `json:"resources"` // the resource types kept, Microsoft.X/y@version
}

// TypeDefs holds the resource type definitions of a types folder.
type TypeDefs struct {
	Dir       string
	Manifest  Manifest
	resources map[string]*ResourceDef // by strings.ToLower(name)
}

// Resource returns the definition of a resource type (Microsoft.X/y@version, case-insensitive),
// or nil.
func (d *TypeDefs) Resource(typeAndVersion string) *ResourceDef {
	return d.resources[strings.ToLower(typeAndVersion)]
}

// ResourceNames returns the names of every resource type held, sorted.
func (d *TypeDefs) ResourceNames() []string {
	var names []string
	for _, r := range d.resources {
		names = append(names, r.Name)
	}
	sort.Strings(names)
	return names
}

// LoadTypeDefs reads dir/manifest.json and the definition files it lists.
func LoadTypeDefs(dir string) (*TypeDefs, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	defs := &TypeDefs{Dir: dir, resources: map[string]*ResourceDef{}}
	if err := json.Unmarshal(data, &defs.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, "manifest.json"), err)
	}
	for _, mf := range defs.Manifest.Files {
		path := filepath.Join(dir, filepath.FromSlash(mf.File))
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		resources, err := parseTypesJSON(raw, mf.File)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		for _, r := range resources {
			defs.resources[strings.ToLower(r.Name)] = r
		}
		for _, want := range mf.Resources {
			if defs.Resource(want) == nil {
				return nil, fmt.Errorf("%s: the manifest lists %s, the file has no such resource type", path, want)
			}
		}
	}
	return defs, nil
}

type rawRef struct {
	Ref string `json:"$ref"`
}

func (r *rawRef) index() (int, error) {
	var i int
	if _, err := fmt.Sscanf(r.Ref, "#/%d", &i); err != nil {
		return 0, fmt.Errorf("reference %q: only local references (#/N) are supported", r.Ref)
	}
	return i, nil
}

type rawProp struct {
	Type        rawRef `json:"type"`
	Flags       int    `json:"flags"`
	Description string `json:"description"`
}

type rawType struct {
	Kind                 string             `json:"$type"`
	Name                 string             `json:"name"`
	Value                string             `json:"value"`
	BuiltIn              int                `json:"kind"`
	Properties           map[string]rawProp `json:"properties"`
	AdditionalProperties *rawRef            `json:"additionalProperties"`
	Sensitive            bool               `json:"sensitive"`
	MinLength            *int64             `json:"minLength"`
	MaxLength            *int64             `json:"maxLength"`
	MinValue             *int64             `json:"minValue"`
	MaxValue             *int64             `json:"maxValue"`
	Pattern              string             `json:"pattern"`
	ItemType             *rawRef            `json:"itemType"`
	Elements             json.RawMessage    `json:"elements"`
	Discriminator        string             `json:"discriminator"`
	BaseProperties       map[string]rawProp `json:"baseProperties"`
	Body                 *rawRef            `json:"body"`
	Flags                int                `json:"flags"`
	WritableScopes       *int               `json:"writableScopes"`
}

// parseTypesJSON reads a types.json and returns its resource types.
func parseTypesJSON(data []byte, file string) ([]*ResourceDef, error) {
	var raws []rawType
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, err
	}
	types := make([]*Type, len(raws))
	for i := range raws {
		types[i] = &Type{}
	}
	get := func(r *rawRef) (*Type, error) {
		if r == nil {
			return nil, nil
		}
		i, err := r.index()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= len(types) {
			return nil, fmt.Errorf("reference %q out of range", r.Ref)
		}
		return types[i], nil
	}
	props := func(m map[string]rawProp) (map[string]*PropDef, error) {
		out := map[string]*PropDef{}
		for name, p := range m {
			t, err := get(&p.Type)
			if err != nil {
				return nil, err
			}
			out[name] = &PropDef{Name: name, Type: t, Flags: p.Flags, Description: p.Description}
		}
		return out, nil
	}
	var resources []*ResourceDef
	for i, r := range raws {
		t := types[i]
		t.Name = r.Name
		var err error
		switch r.Kind {
		case "AnyType":
			t.Kind = "any"
		case "NullType":
			t.Kind = "null"
		case "BooleanType":
			t.Kind = "bool"
		case "IntegerType":
			t.Kind, t.MinValue, t.MaxValue = "int", r.MinValue, r.MaxValue
		case "StringType":
			t.Kind, t.Sensitive, t.MinLength, t.MaxLength, t.Pattern = "string", r.Sensitive, r.MinLength, r.MaxLength, r.Pattern
		case "StringLiteralType":
			t.Kind, t.Value = "literal", r.Value
		case "BuiltInType": // the older format
			t.Kind = map[int]string{1: "any", 2: "null", 3: "bool", 4: "int", 5: "string", 6: "object", 7: "array", 8: "string"}[r.BuiltIn]
			if t.Kind == "" {
				return nil, fmt.Errorf("#/%d: unknown BuiltInType kind %d", i, r.BuiltIn)
			}
			if t.Kind == "object" {
				t.Additional = &Type{Kind: "any"}
			}
			if t.Kind == "array" {
				t.Item = &Type{Kind: "any"}
			}
		case "ObjectType":
			t.Kind, t.Sensitive = "object", r.Sensitive
			if t.Props, err = props(r.Properties); err == nil {
				t.Additional, err = get(r.AdditionalProperties)
			}
		case "ArrayType":
			t.Kind, t.MinLength, t.MaxLength = "array", r.MinLength, r.MaxLength
			t.Item, err = get(r.ItemType)
		case "UnionType":
			t.Kind = "union"
			var refs []rawRef
			if err = json.Unmarshal(r.Elements, &refs); err == nil {
				for _, ref := range refs {
					var e *Type
					if e, err = get(&ref); err != nil {
						break
					}
					t.Elements = append(t.Elements, e)
				}
			}
		case "DiscriminatedObjectType":
			t.Kind, t.Discrim = "discriminated", r.Discriminator
			if t.Base, err = props(r.BaseProperties); err != nil {
				break
			}
			var refs map[string]rawRef
			if err = json.Unmarshal(r.Elements, &refs); err == nil {
				t.Variants = map[string]*Type{}
				for k, ref := range refs {
					var e *Type
					if e, err = get(&ref); err != nil {
						break
					}
					t.Variants[k] = e
				}
			}
		case "ResourceType":
			t.Kind = "resource"
			var body *Type
			if body, err = get(r.Body); err == nil {
				readOnly := r.Flags&1 != 0 // Graph (older format): ResourceFlags.ReadOnly
				if r.WritableScopes != nil && *r.WritableScopes == 0 {
					readOnly = true
				}
				resources = append(resources, &ResourceDef{Name: r.Name, Body: body, ReadOnly: readOnly, File: file})
			}
		case "ResourceFunctionType", "FunctionType", "NamespaceFunctionType":
			t.Kind = "function"
		default:
			return nil, fmt.Errorf("#/%d: unknown $type %q", i, r.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("#/%d: %v", i, err)
		}
	}
	return resources, nil
}

// Prop returns the property named name of an object type, or of a discriminated type's base.
func (t *Type) Prop(name string) *PropDef {
	if t == nil {
		return nil
	}
	if p := t.Props[name]; p != nil {
		return p
	}
	return t.Base[name]
}

// Describe names a type for messages: string, int, 'literal', 'a' | 'b' | string, object, ….
func (t *Type) Describe() string {
	if t == nil {
		return "any"
	}
	switch t.Kind {
	case "literal":
		return "'" + t.Value + "'"
	case "union":
		var parts []string
		for _, e := range t.Elements {
			parts = append(parts, e.Describe())
		}
		return strings.Join(parts, " | ")
	case "object", "discriminated":
		if t.Name != "" {
			return "object (" + t.Name + ")"
		}
		return "object"
	case "array":
		return t.Item.Describe() + "[]"
	}
	return t.Kind
}

// FullType returns the resource type and API version of a resource declaration,
// Microsoft.X/y@version: its own for a top-level resource, or for a resource declared in another
// one's body the parent's type, '/', its own type, and its own version or else the parent's.
func (d *Decl) FullType() string {
	if d.Parent == nil {
		return d.Ref
	}
	parentType, parentVersion, _ := strings.Cut(d.Parent.FullType(), "@")
	childType, childVersion, ok := strings.Cut(d.Ref, "@")
	if !ok {
		childVersion = parentVersion
	}
	return parentType + "/" + childType + "@" + childVersion
}

// GraphTypesVersion returns the version of the Microsoft Graph Bicep extension a bicepconfig.json
// names (extensions.<alias>: br:mcr.microsoft.com/bicep/extensions/microsoftgraph/<api>:<version>),
// e.g. "v1.0", "1.0.0"; empty strings if it names none.
func GraphTypesVersion(bicepconfig string) (api, version string, err error) {
	data, err := os.ReadFile(bicepconfig)
	if err != nil {
		return "", "", err
	}
	var config struct {
		Extensions map[string]any `json:"extensions"`
	}
	if err := json.Unmarshal(StripJSONComments(data), &config); err != nil {
		return "", "", fmt.Errorf("%s: %v", bicepconfig, err)
	}
	const prefix = "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/"
	for _, ref := range config.Extensions {
		s, ok := ref.(string)
		if !ok || !strings.HasPrefix(s, prefix) {
			continue
		}
		api, version, ok := strings.Cut(strings.TrimPrefix(s, prefix), ":")
		if !ok {
			return "", "", fmt.Errorf("%s: %s has no version", bicepconfig, s)
		}
		return api, version, nil
	}
	return "", "", nil
}

// UsedResourceTypes returns the resource types (Microsoft.X/y@version, as first written) the
// Bicep files declare, sorted, each once (case-insensitively).
func UsedResourceTypes(files []*File) []string {
	seen := map[string]string{}
	for _, f := range files {
		for _, r := range f.Resources() {
			t := r.FullType()
			if _, ok := seen[strings.ToLower(t)]; !ok {
				seen[strings.ToLower(t)] = t
			}
		}
	}
	var out []string
	for _, t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

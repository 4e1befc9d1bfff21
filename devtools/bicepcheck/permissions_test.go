package bicepcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/calstatus/calstatus/internal/config"
)

// The app registration asks for — and with grantGraphPermission grants — exactly the Graph
// permissions calstatus's settings need (config.GraphPermissions): Presence.Read.All and
// User.Read.All only while PRESENCE_SYNC or AUTOMATIC_REPLIES_SYNC is on. The module is evaluated
// for every combination of its three switches.
func TestGraphPermissionsFollowTheSettings(t *testing.T) {
	f, err := ParseFile(filepath.Join(repoRoot(t), "infra", "modules", "app-registration.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	for _, grant := range []bool{false, true} {
		for _, presence := range []bool{false, true} {
			for _, replies := range []bool{false, true} {
				params := map[string]any{"grantGraphPermission": grant, "presenceSync": presence, "automaticRepliesSync": replies}
				var want []string
				for _, p := range (config.Config{PresenceSync: presence, AutomaticRepliesSync: replies}).GraphPermissions() {
					want = append(want, config.GraphAppRoleIDs[p])
				}
				asked, granted := graphRoles(t, f, params)
				if !slices.Equal(asked, want) {
					t.Errorf("%v: requiredResourceAccess asks for %q, want %q", params, asked, want)
				}
				if !grant {
					want = nil
				}
				if !slices.Equal(granted, want) {
					t.Errorf("%v: the deployment grants %q, want %q", params, granted, want)
				}
			}
		}
	}
}

// graphRoles evaluates app-registration.bicep with params: the Microsoft Graph app roles the
// application asks for, and those the app role assignments it deploys grant.
func graphRoles(t *testing.T, f *File, params map[string]any) (asked, granted []string) {
	t.Helper()
	ev := &concrete{t: t, f: f, params: params}
	graphAppID := ev.eval(f.Find("var", "microsoftGraphAppId").Value, nil)
	app := f.Find("resource", "app")
	for _, access := range ev.eval(prop(t, app.Value, "requiredResourceAccess"), nil).([]any) {
		a := access.(map[string]any)
		if a["resourceAppId"] != graphAppID {
			continue
		}
		for _, r := range a["resourceAccess"].([]any) {
			if r := r.(map[string]any); r["type"] == "Role" {
				asked = append(asked, r["id"].(string))
			}
		}
	}
	for _, d := range f.Resources() {
		if d.Ref != "Microsoft.Graph/appRoleAssignedTo@v1.0" {
			continue
		}
		body, loop, item := d.Value, []any{nil}, ""
		if fx, ok := d.Value.(*ForExpr); ok {
			body, loop, item = fx.Body, ev.eval(fx.Iter, nil).([]any), fx.Item
		}
		for _, v := range loop {
			local := map[string]any{item: v}
			b := body
			if ifx, ok := b.(*IfExpr); ok {
				if !ev.eval(ifx.Cond, local).(bool) {
					continue
				}
				b = ifx.Body
			}
			if ev.eval(prop(t, b, "resourceId"), local) != "resource microsoftGraph.id" {
				t.Errorf("%s: an app role assignment of a resource other than Microsoft Graph", d.Name)
			}
			granted = append(granted, ev.eval(prop(t, b, "appRoleId"), local).(string))
		}
	}
	return asked, granted
}

func prop(t *testing.T, e Expr, key string) Expr {
	t.Helper()
	if o, ok := e.(*ObjectExpr); ok {
		for _, p := range o.Props {
			if p.Key == key {
				return p.Value
			}
		}
	}
	t.Fatalf("line %d: no property %s", e.Line(), key)
	return nil
}

// concrete evaluates the few expressions the permission lists are built from, with given
// parameter values: literals, parameters, variables, loop variables, !, &&, ||, ==, ternaries,
// arrays, objects and loops. A member of a resource is its name (e.g. "resource x.id").
type concrete struct {
	t      *testing.T
	f      *File
	params map[string]any
}

func (c *concrete) eval(e Expr, local map[string]any) any {
	c.t.Helper()
	switch x := e.(type) {
	case *ParenExpr:
		return c.eval(x.X, local)
	case *BoolExpr:
		return x.Value
	case *StringExpr:
		if s, ok := x.Literal(); ok {
			return s
		}
	case *IdentExpr:
		if v, ok := local[x.Name]; ok {
			return v
		}
		switch d := c.f.Symbol(x.Name); {
		case d == nil:
		case d.Kind == "param":
			if v, ok := c.params[d.Name]; ok {
				return v
			}
			if d.Value != nil {
				return c.eval(d.Value, nil)
			}
		case d.Kind == "var":
			return c.eval(d.Value, nil)
		case d.Kind == "resource":
			return "resource " + d.Name
		}
	case *MemberExpr:
		switch v := c.eval(x.X, local).(type) {
		case map[string]any:
			return v[x.Name]
		case string:
			return v + "." + x.Name
		}
	case *UnaryExpr:
		if x.Op == "!" && !x.Postfix {
			return !c.eval(x.X, local).(bool)
		}
	case *BinaryExpr:
		l, r := c.eval(x.X, local), c.eval(x.Y, local)
		switch x.Op {
		case "||":
			return l.(bool) || r.(bool)
		case "&&":
			return l.(bool) && r.(bool)
		case "==":
			return l == r
		}
	case *TernaryExpr:
		if c.eval(x.Cond, local).(bool) {
			return c.eval(x.Then, local)
		}
		return c.eval(x.Else, local)
	case *ArrayExpr:
		out := []any{}
		for _, item := range x.Items {
			out = append(out, c.eval(item, local))
		}
		return out
	case *ObjectExpr:
		out := map[string]any{}
		for _, p := range x.Props {
			out[p.Key] = c.eval(p.Value, local)
		}
		return out
	case *ForExpr:
		out := []any{}
		for _, v := range c.eval(x.Iter, local).([]any) {
			inner := map[string]any{x.Item: v}
			for k, v := range local {
				if k != x.Item {
					inner[k] = v
				}
			}
			out = append(out, c.eval(x.Body, inner))
		}
		return out
	}
	c.t.Fatalf("%s:%d: an expression this test does not evaluate (%T)", c.f.Path, e.Line(), e)
	return nil
}

// The two settings reach the deployment: azd environment variables (off unless set), main.bicep's
// bool parameters, passed on to the app registration and to the function app, whose app settings
// carry them.
func TestPresenceSettingsReachTheDeployment(t *testing.T) {
	root := repoRoot(t)
	main, err := ParseFile(filepath.Join(root, "infra", "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "infra", "main.parameters.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Parameters map[string]struct{ Value any } `json:"parameters"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for param, setting := range map[string]string{"presenceSync": "PRESENCE_SYNC", "automaticRepliesSync": "AUTOMATIC_REPLIES_SYNC"} {
		d := main.Find("param", param)
		if d == nil || d.Type == nil || d.Type.Kind != "bool" || fmt.Sprint((&concrete{t: t, f: main}).eval(d.Value, nil)) != "false" {
			t.Errorf("main.bicep: no `param %s bool = false`", param)
		}
		if v := file.Parameters[param].Value; v != "${"+setting+"=false}" {
			t.Errorf("main.parameters.json: %s is %v, want \"${%s=false}\"", param, v, setting)
		}
		for _, module := range []string{"appRegistration", "functionApp"} {
			m := main.Find("module", module)
			body := m.Value
			if ifx, ok := body.(*IfExpr); ok {
				body = ifx.Body
			}
			if id, ok := prop(t, prop(t, body, "params"), param).(*IdentExpr); !ok || id.Name != param {
				t.Errorf("main.bicep: module %s is not given %s: %s", module, param, param)
			}
		}
	}
	fa, err := ParseFile(filepath.Join(root, "infra", "modules", "function-app.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	site := fa.Find("resource", "site")
	settings := prop(t, prop(t, prop(t, site.Value, "properties"), "siteConfig"), "appSettings").(*ArrayExpr)
	for _, on := range []bool{false, true} {
		ev := &concrete{t: t, f: fa, params: map[string]any{"presenceSync": on, "automaticRepliesSync": !on}}
		got := map[string]any{}
		for _, item := range settings.Items {
			if o, ok := item.(*ObjectExpr); ok {
				if name, ok := ev.eval(prop(t, o, "name"), nil).(string); ok && regexp.MustCompile(`^(PRESENCE|AUTOMATIC_REPLIES)_SYNC$`).MatchString(name) {
					got[name] = ev.eval(prop(t, o, "value"), nil)
				}
			}
		}
		if want := fmt.Sprint(on); got["PRESENCE_SYNC"] != want || got["AUTOMATIC_REPLIES_SYNC"] != fmt.Sprint(!on) {
			t.Errorf("presenceSync %v, automaticRepliesSync %v: app settings %v", on, !on, got)
		}
	}
}

package funchost

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// routeTemplate is a (small) ASP.NET Core route template as used by
// httpTrigger "route": literal segments, {name}, {name?}, {name:constraint},
// {name=default} and a final catch-all {*name}. Literals match
// case-insensitively.
type routeTemplate struct {
	segs []routeSeg
}

type routeSeg struct {
	literal    string
	param      string
	optional   bool
	catchAll   bool
	constraint string
	def        string
	hasDefault bool
}

func parseRoute(route string) (*routeTemplate, error) {
	rt := &routeTemplate{}
	if route == "" {
		return rt, nil
	}
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("route %q has an empty segment", route)
		}
		if !strings.HasPrefix(p, "{") {
			if strings.ContainsAny(p, "{}") {
				return nil, fmt.Errorf("route %q: segment %q mixes text and parameters, which funchost does not support", route, p)
			}
			rt.segs = append(rt.segs, routeSeg{literal: p})
			continue
		}
		if !strings.HasSuffix(p, "}") || strings.Count(p, "{") != 1 {
			return nil, fmt.Errorf("route %q: bad parameter segment %q", route, p)
		}
		body := p[1 : len(p)-1]
		s := routeSeg{}
		if strings.HasPrefix(body, "*") {
			s.catchAll = true
			body = strings.TrimPrefix(body[1:], "*")
			if i != len(parts)-1 {
				return nil, fmt.Errorf("route %q: a catch-all parameter must be last", route)
			}
		}
		if name, def, ok := strings.Cut(body, "="); ok {
			body, s.def, s.hasDefault, s.optional = name, def, true, true
		}
		if strings.HasSuffix(body, "?") {
			s.optional = true
			body = body[:len(body)-1]
		}
		if name, c, ok := strings.Cut(body, ":"); ok {
			body, s.constraint = name, strings.ToLower(c)
		}
		if body == "" {
			return nil, fmt.Errorf("route %q: parameter without a name", route)
		}
		s.param = body
		rt.segs = append(rt.segs, s)
	}
	// Only trailing parameters may be optional.
	seenOptional := false
	for _, s := range rt.segs {
		if s.optional || s.catchAll {
			seenOptional = true
		} else if seenOptional {
			return nil, fmt.Errorf("route %q: an optional parameter must be at the end", route)
		}
	}
	return rt, nil
}

// match matches the path (relative to the route prefix, no leading slash)
// and returns the route values.
func (rt *routeTemplate) match(path string) (map[string]string, bool) {
	var parts []string
	if path != "" {
		parts = strings.Split(path, "/")
	}
	vals := map[string]string{}
	for i, s := range rt.segs {
		if s.catchAll {
			rest := strings.Join(parts[min(i, len(parts)):], "/")
			if rest != "" {
				vals[s.param] = unescape(rest)
			} else if s.hasDefault {
				vals[s.param] = s.def
			}
			return vals, true
		}
		if i >= len(parts) {
			if !s.optional {
				return nil, false
			}
			if s.hasDefault {
				vals[s.param] = s.def
			}
			continue
		}
		p := parts[i]
		if s.literal != "" {
			if !strings.EqualFold(unescape(p), s.literal) {
				return nil, false
			}
			continue
		}
		v := unescape(p)
		if v == "" || !constraintOK(s.constraint, v) {
			return nil, false
		}
		vals[s.param] = v
	}
	if len(parts) > len(rt.segs) {
		return nil, false
	}
	return vals, true
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func constraintOK(c, v string) bool {
	name, _, _ := strings.Cut(c, "(")
	switch name {
	case "", "alpha", "required", "length", "minlength", "maxlength", "regex":
		if name == "alpha" {
			for _, r := range v {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
					return false
				}
			}
		}
		return true
	case "int", "long":
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	case "bool":
		_, err := strconv.ParseBool(v)
		return err == nil
	case "double", "float", "decimal":
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	case "guid":
		return len(v) == 36 && strings.Count(v, "-") == 4
	}
	return true
}

// precedence orders routes so that more specific ones are tried first.
func (rt *routeTemplate) precedence() (int, int) {
	lit := 0
	for _, s := range rt.segs {
		if s.literal != "" {
			lit++
		}
	}
	return lit, len(rt.segs)
}

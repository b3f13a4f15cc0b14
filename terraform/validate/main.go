// Command validate checks the Terraform configuration in terraform/ without its providers.
//
// `terraform validate` needs the providers' schemas, and the providers (hashicorp/aws, helm,
// random) come only from registry.terraform.io, which a machine with no internet access cannot
// reach. This check covers what can be known from the configuration alone, with HashiCorp's own
// HCL parser:
//
//   - every .tf and .tfvars file parses;
//   - every reference resolves: var.X is declared, local.X is defined, module.M.O names a module
//     call and one of that module's outputs, data.T.N and T.N are declared in the same module,
//     count.* and each.* appear only where count or for_each is set, path.* and terraform.* are
//     known names, a dynamic block's iterator only inside it;
//   - every module call passes only variables the module declares and every variable the module
//     needs (no default);
//   - every resource and data source belongs to a provider in the root's required_providers, and
//     required_version and every provider's version constraint are set;
//   - every variable has a type and a description, every output a description, and nothing
//     declared is unused (variables and locals);
//   - every -vars file sets only declared root variables, and together with the defaults sets all
//     of those without one.
//
// With -dump it prints, as JSON, each module's resources, module calls and variables with their
// constant attribute values (or the expression's source text), for tests that assert what the
// configuration guarantees (encryption, private endpoints, deletion protection, ...).
//
// Usage: validate [-dump] [-vars file.tfvars ...] <root module directory>
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

type variable struct {
	hasDefault     bool
	hasType        bool
	hasDescription bool
	rng            hcl.Range
}

type moduleCall struct {
	source string
	args   map[string]*hclsyntax.Attribute
	rng    hcl.Range
}

type module struct {
	dir               string
	files             map[string][]byte
	variables         map[string]*variable
	locals            map[string]*hclsyntax.Attribute
	resources         map[string]*hclsyntax.Block
	data              map[string]*hclsyntax.Block
	calls             map[string]*moduleCall
	outputs           map[string]*hclsyntax.Block
	requiredProviders map[string]bool
	requiredVersion   bool
	used              map[string]bool // "var.x", "local.y"
	bodies            []*hclsyntax.Body
}

type checker struct {
	parser   *hclparse.Parser
	modules  map[string]*module
	problems []string
}

func (c *checker) fail(rng hcl.Range, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("%s:%d: %s", rng.Filename, rng.Start.Line, fmt.Sprintf(format, args...)))
}

func (c *checker) diags(diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := ""
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d: ", d.Subject.Filename, d.Subject.Start.Line)
		}
		c.problems = append(c.problems, where+d.Summary+": "+d.Detail)
	}
}

func (c *checker) load(dir string) *module {
	dir = filepath.Clean(dir)
	if m, ok := c.modules[dir]; ok {
		return m
	}
	m := &module{
		dir: dir, files: map[string][]byte{}, variables: map[string]*variable{},
		locals: map[string]*hclsyntax.Attribute{}, resources: map[string]*hclsyntax.Block{},
		data: map[string]*hclsyntax.Block{}, calls: map[string]*moduleCall{},
		outputs: map[string]*hclsyntax.Block{}, requiredProviders: map[string]bool{}, used: map[string]bool{},
	}
	c.modules[dir] = m
	paths, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	sort.Strings(paths)
	if len(paths) == 0 {
		c.problems = append(c.problems, dir+": no .tf files")
	}
	for _, path := range paths {
		file, diags := c.parser.ParseHCLFile(path)
		c.diags(diags)
		if file == nil {
			continue
		}
		m.files[path] = file.Bytes
		body := file.Body.(*hclsyntax.Body)
		m.bodies = append(m.bodies, body)
		for name, attr := range body.Attributes {
			c.fail(attr.SrcRange, "top-level argument %q is not allowed", name)
		}
		for _, block := range body.Blocks {
			c.declare(m, block)
		}
	}
	for _, call := range m.calls {
		if strings.HasPrefix(call.source, "./") || strings.HasPrefix(call.source, "../") {
			c.load(filepath.Join(dir, call.source))
		}
	}
	return m
}

func labels(block *hclsyntax.Block, n int) bool {
	return len(block.Labels) == n
}

func (c *checker) declare(m *module, block *hclsyntax.Block) {
	switch block.Type {
	case "terraform":
		if _, ok := block.Body.Attributes["required_version"]; ok {
			m.requiredVersion = true
		}
		for _, inner := range block.Body.Blocks {
			if inner.Type != "required_providers" {
				continue
			}
			for name, attr := range inner.Body.Attributes {
				m.requiredProviders[name] = true
				value, diags := attr.Expr.Value(nil)
				if diags.HasErrors() || !value.Type().IsObjectType() || !value.Type().HasAttribute("version") ||
					!value.Type().HasAttribute("source") {
					c.fail(attr.SrcRange, "required provider %q needs a source and a version constraint", name)
				}
			}
		}
	case "variable":
		if !labels(block, 1) {
			c.fail(block.DefRange(), "variable needs one label")
			return
		}
		_, hasDefault := block.Body.Attributes["default"]
		_, hasType := block.Body.Attributes["type"]
		_, hasDescription := block.Body.Attributes["description"]
		m.variables[block.Labels[0]] = &variable{hasDefault, hasType, hasDescription, block.DefRange()}
	case "locals":
		for name, attr := range block.Body.Attributes {
			if _, dup := m.locals[name]; dup {
				c.fail(attr.SrcRange, "local.%s defined twice", name)
			}
			m.locals[name] = attr
		}
	case "resource", "data":
		if !labels(block, 2) {
			c.fail(block.DefRange(), "%s needs two labels", block.Type)
			return
		}
		key := block.Labels[0] + "." + block.Labels[1]
		table := m.resources
		if block.Type == "data" {
			table = m.data
		}
		if _, dup := table[key]; dup {
			c.fail(block.DefRange(), "%s %s declared twice", block.Type, key)
		}
		table[key] = block
	case "module":
		if !labels(block, 1) {
			c.fail(block.DefRange(), "module needs one label")
			return
		}
		call := &moduleCall{args: map[string]*hclsyntax.Attribute{}, rng: block.DefRange()}
		for name, attr := range block.Body.Attributes {
			if name == "source" {
				value, diags := attr.Expr.Value(nil)
				if diags.HasErrors() || value.Type() != cty.String || value.IsNull() {
					c.fail(attr.SrcRange, "module source must be a literal string")
					continue
				}
				call.source = value.AsString()
				continue
			}
			call.args[name] = attr
		}
		m.calls[block.Labels[0]] = call
	case "output":
		if !labels(block, 1) {
			c.fail(block.DefRange(), "output needs one label")
			return
		}
		if _, ok := block.Body.Attributes["value"]; !ok {
			c.fail(block.DefRange(), "output %q has no value", block.Labels[0])
		}
		m.outputs[block.Labels[0]] = block
	case "provider", "moved", "import", "removed", "check":
	default:
		c.fail(block.DefRange(), "unknown top-level block %q", block.Type)
	}
}

// scope is what a position in the configuration may refer to besides the module's declarations.
type scope struct {
	count     bool
	each      bool
	self      bool
	iterators map[string]bool
	// validation: inside a variable's validation block, where a reference to the variable
	// itself does not count as a use.
	validation bool
}

func (s scope) with(iterator string) scope {
	next := map[string]bool{iterator: true}
	for k := range s.iterators {
		next[k] = true
	}
	return scope{s.count, s.each, s.self, next, s.validation}
}

var metaArguments = map[string]bool{
	"count": true, "for_each": true, "providers": true, "depends_on": true, "version": true,
}

func (c *checker) checkModule(m *module, root *module) {
	for _, body := range m.bodies {
		for _, block := range body.Blocks {
			sc := scope{iterators: map[string]bool{}}
			_, sc.count = block.Body.Attributes["count"]
			_, sc.each = block.Body.Attributes["for_each"]
			c.checkBody(m, block.Type, block.Body, sc)
			switch block.Type {
			case "resource", "data":
				provider := strings.SplitN(block.Labels[0], "_", 2)[0]
				if !root.requiredProviders[provider] {
					c.fail(block.DefRange(), "%s %s.%s: provider %q is not in the root's required_providers",
						block.Type, block.Labels[0], block.Labels[1], provider)
				}
			}
		}
	}
	for name, v := range m.variables {
		if !v.hasType {
			c.fail(v.rng, "variable %q has no type", name)
		}
		if !v.hasDescription {
			c.fail(v.rng, "variable %q has no description", name)
		}
		if !m.used["var."+name] {
			c.fail(v.rng, "variable %q is declared and not used", name)
		}
	}
	for name, attr := range m.locals {
		if !m.used["local."+name] {
			c.fail(attr.SrcRange, "local.%s is defined and not used", name)
		}
	}
	for name, out := range m.outputs {
		if _, ok := out.Body.Attributes["description"]; !ok {
			c.fail(out.DefRange(), "output %q has no description", name)
		}
	}
	for name, call := range m.calls {
		child, ok := c.modules[filepath.Clean(filepath.Join(m.dir, call.source))]
		if !ok {
			c.fail(call.rng, "module %q: source %q is not a local module this check can read", name, call.source)
			continue
		}
		for arg, attr := range call.args {
			if metaArguments[arg] {
				continue
			}
			if _, declared := child.variables[arg]; !declared {
				c.fail(attr.SrcRange, "module %q: %s declares no variable %q", name, call.source, arg)
			}
		}
		for varName, v := range child.variables {
			if _, given := call.args[varName]; !given && !v.hasDefault {
				c.fail(call.rng, "module %q: required variable %q (no default in %s) is not set", name, varName, call.source)
			}
		}
	}
}

// notExpressions are arguments whose value is not an expression over references: a variable's
// type constraint, lifecycle's attribute names, a resource's provider configuration address and a
// module call's provider map.
var notExpressions = map[string]map[string]bool{
	"variable":  {"type": true},
	"lifecycle": {"ignore_changes": true},
	"resource":  {"provider": true},
	"data":      {"provider": true},
	"module":    {"providers": true},
}

func (c *checker) checkBody(m *module, kind string, body *hclsyntax.Body, sc scope) {
	for name, attr := range body.Attributes {
		if notExpressions[kind][name] {
			continue
		}
		c.checkExpr(m, attr.Expr, sc)
	}
	for _, block := range body.Blocks {
		inner := sc
		switch block.Type {
		case "dynamic":
			iterator := block.Labels[0]
			if it, ok := block.Body.Attributes["iterator"]; ok {
				iterator = hcl.ExprAsKeyword(it.Expr)
			}
			inner = sc.with(iterator)
		case "provisioner", "connection":
			inner.self = true
		case "validation":
			inner.validation = true
		case "content":
		}
		c.checkBody(m, block.Type, block.Body, inner)
	}
}

func (c *checker) checkExpr(m *module, expr hclsyntax.Expression, sc scope) {
	for _, traversal := range expr.Variables() {
		c.checkTraversal(m, traversal, sc)
	}
}

func step(t hcl.Traversal, i int) (string, bool) {
	if i >= len(t) {
		return "", false
	}
	switch s := t[i].(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseRoot:
		return s.Name, true
	}
	return "", false
}

func (c *checker) checkTraversal(m *module, t hcl.Traversal, sc scope) {
	root := t.RootName()
	rng := t.SourceRange()
	first, _ := step(t, 1)
	switch root {
	case "var":
		if _, ok := m.variables[first]; !ok {
			c.fail(rng, "var.%s is not declared in %s", first, m.dir)
		}
		if !sc.validation {
			m.used["var."+first] = true
		}
	case "local":
		if _, ok := m.locals[first]; !ok {
			c.fail(rng, "local.%s is not defined in %s", first, m.dir)
		}
		m.used["local."+first] = true
	case "module":
		call, ok := m.calls[first]
		if !ok {
			c.fail(rng, "module.%s is not called in %s", first, m.dir)
			return
		}
		output, hasOutput := step(t, 2)
		child, loaded := c.modules[filepath.Clean(filepath.Join(m.dir, call.source))]
		if hasOutput && loaded {
			if _, ok := child.outputs[output]; !ok {
				c.fail(rng, "module.%s.%s: %s has no output %q", first, output, call.source, output)
			}
		}
	case "data":
		name, _ := step(t, 2)
		if _, ok := m.data[first+"."+name]; !ok {
			c.fail(rng, "data.%s.%s is not declared in %s", first, name, m.dir)
		}
	case "path":
		if first != "module" && first != "root" && first != "cwd" {
			c.fail(rng, "path.%s is not a known path", first)
		}
	case "terraform":
		if first != "workspace" {
			c.fail(rng, "terraform.%s is not known", first)
		}
	case "count":
		if !sc.count || first != "index" {
			c.fail(rng, "count.%s outside a block with count", first)
		}
	case "each":
		if !sc.each || (first != "key" && first != "value") {
			c.fail(rng, "each.%s outside a block with for_each", first)
		}
	case "self":
		if !sc.self {
			c.fail(rng, "self outside a provisioner or connection")
		}
	default:
		if sc.iterators[root] {
			return
		}
		if !strings.Contains(root, "_") {
			c.fail(rng, "%q is not a known reference", root)
			return
		}
		if _, ok := m.resources[root+"."+first]; !ok {
			c.fail(rng, "resource %s.%s is not declared in %s", root, first, m.dir)
		}
	}
}

func (c *checker) checkVars(root *module, paths []string) {
	for _, path := range paths {
		file, diags := c.parser.ParseHCLFile(path)
		c.diags(diags)
		if file == nil {
			continue
		}
		attrs, diags := file.Body.JustAttributes()
		c.diags(diags)
		for name, attr := range attrs {
			if _, ok := root.variables[name]; !ok {
				c.fail(attr.Range, "%s sets %q, which the root module does not declare", filepath.Base(path), name)
			}
			if _, diags := attr.Expr.Value(nil); diags.HasErrors() {
				c.fail(attr.Range, "%s: %q must be a constant", filepath.Base(path), name)
			}
		}
		for name, v := range root.variables {
			if _, set := attrs[name]; !set && !v.hasDefault {
				c.fail(hcl.Range{Filename: path}, "%s does not set required variable %q", filepath.Base(path), name)
			}
		}
	}
}

// --- -dump ----------------------------------------------------------------------------------------

func valueOf(m *module, expr hclsyntax.Expression) any {
	if value, diags := expr.Value(nil); !diags.HasErrors() && value.IsWhollyKnown() {
		raw, err := ctyjson.Marshal(value, value.Type())
		if err == nil {
			var decoded any
			if json.Unmarshal(raw, &decoded) == nil {
				return decoded
			}
		}
	}
	rng := expr.Range()
	src := m.files[rng.Filename]
	return map[string]string{"expr": string(rng.SliceBytes(src))}
}

func dumpBody(m *module, body *hclsyntax.Body) map[string]any {
	attrs := map[string]any{}
	for name, attr := range body.Attributes {
		attrs[name] = valueOf(m, attr.Expr)
	}
	blocks := map[string][]map[string]any{}
	for _, block := range body.Blocks {
		blocks[block.Type] = append(blocks[block.Type], dumpBody(m, block.Body))
	}
	return map[string]any{"attributes": attrs, "blocks": blocks}
}

func dump(c *checker, rootDir string) map[string]any {
	out := map[string]any{}
	for dir, m := range c.modules {
		rel, _ := filepath.Rel(rootDir, dir)
		resources := map[string]any{}
		for _, body := range m.bodies {
			for _, block := range body.Blocks {
				switch block.Type {
				case "resource", "data", "variable", "module", "output", "provider", "terraform":
					key := block.Type
					if len(block.Labels) > 0 {
						key += "." + strings.Join(block.Labels, ".")
					}
					resources[key] = dumpBody(m, block.Body)
				}
			}
		}
		out[filepath.ToSlash(rel)] = resources
	}
	return out
}

func main() {
	var varFiles []string
	flag.Func("vars", "a .tfvars file to check against the root's variables (repeatable)", func(v string) error {
		varFiles = append(varFiles, v)
		return nil
	})
	dumpJSON := flag.Bool("dump", false, "print the parsed configuration as JSON after the checks")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: validate [-dump] [-vars file.tfvars ...] <root module directory>")
		os.Exit(2)
	}
	rootDir := filepath.Clean(flag.Arg(0))
	c := &checker{parser: hclparse.NewParser(), modules: map[string]*module{}}
	root := c.load(rootDir)
	if !root.requiredVersion {
		c.problems = append(c.problems, rootDir+": the root module sets no required_version")
	}
	if len(root.requiredProviders) == 0 {
		c.problems = append(c.problems, rootDir+": the root module has no required_providers")
	}
	dirs := make([]string, 0, len(c.modules))
	for dir := range c.modules {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		c.checkModule(c.modules[dir], root)
	}
	c.checkVars(root, varFiles)
	sort.Strings(c.problems)
	for _, p := range c.problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if *dumpJSON {
		encoded, err := json.MarshalIndent(dump(c, rootDir), "", " ")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(encoded))
	}
	if len(c.problems) > 0 {
		fmt.Fprintf(os.Stderr, "%d problem(s) in %d module(s)\n", len(c.problems), len(c.modules))
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "ok: %d module(s), %d var file(s)\n", len(c.modules), len(varFiles))
}

package storage_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"regctl/pkg/storage"
)

// Packages that may name drivers: they read and write config.yml, whose
// storage sections are named by driver (storage.filesystem, storage.s3).
var configFormat = []string{"pkg/distconfig", "pkg/reconfigure", "pkg/settings"}

// TestNothingOutsideBranchesOnADriver: outside pkg/storage, no code
// names a driver's concrete type (*storage.S3, *storage.Filesystem) or
// compares a driver's name (a Name() call, a Driver field) with a
// registered driver's name: what a driver can do is a capability,
// found with storage.As, or a question pkg/storage answers
// (storage.LocalRoot), so a new driver needs no change elsewhere.
func TestNothingOutsideBranchesOnADriver(t *testing.T) {
	root := moduleRoot(t)
	var problems []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel == "pkg/storage" || slices.Contains(configFormat, rel) || strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		problems = append(problems, driverBranches(t, p, rel)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// driverBranches lists what file p (rel to the module) does against the
// rule above.
func driverBranches(t *testing.T, p, rel string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	pkgName := ""
	for _, im := range f.Imports {
		if path, _ := strconv.Unquote(im.Path.Value); path == "regctl/pkg/storage" {
			pkgName = "storage"
			if im.Name != nil {
				pkgName = im.Name.Name
			}
		}
	}
	names := storage.Drivers()
	var out []string
	at := func(n ast.Node, format string, args ...any) {
		pos := fset.Position(n.Pos())
		out = append(out, rel+":"+strconv.Itoa(pos.Line)+": "+fmt.Sprintf(format, args...))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && pkgName != "" && id.Name == pkgName && (n.Sel.Name == "S3" || n.Sel.Name == "Filesystem") {
				at(n, "names the driver type storage.%s: use a capability (storage.As)", n.Sel.Name)
			}
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				if lit := driverLiteral(n.X, names); lit != "" && isDriverName(n.Y) {
					at(n, "compares a driver's name with %s", lit)
				} else if lit := driverLiteral(n.Y, names); lit != "" && isDriverName(n.X) {
					at(n, "compares a driver's name with %s", lit)
				}
			}
		case *ast.SwitchStmt:
			if n.Tag == nil || !isDriverName(n.Tag) {
				return true
			}
			for _, c := range n.Body.List {
				for _, e := range c.(*ast.CaseClause).List {
					if lit := driverLiteral(e, names); lit != "" {
						at(e, "switches on a driver's name: case %s", lit)
					}
				}
			}
		}
		return true
	})
	return out
}

// isDriverName reports whether e is a Name() call or a Driver field.
func isDriverName(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.CallExpr:
		s, ok := e.Fun.(*ast.SelectorExpr)
		return ok && s.Sel.Name == "Name" && len(e.Args) == 0
	case *ast.SelectorExpr:
		return e.Sel.Name == "Driver"
	}
	return false
}

// driverLiteral is e when it is a string literal naming a registered
// driver, else "".
func driverLiteral(e ast.Expr, names []string) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	if s, err := strconv.Unquote(lit.Value); err == nil && slices.Contains(names, s) {
		return lit.Value
	}
	return ""
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// TestNoSDKTypesExported: pkg/storage's exported functions, methods and
// types never mention the AWS SDK, and pkg/migrate does not import it:
// tools outside go through the Driver interface and its capabilities.
func TestNoSDKTypesExported(t *testing.T) {
	root := moduleRoot(t)
	var problems []string
	for _, dir := range []string{"pkg/storage", "pkg/migrate"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range files {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			sdk := map[string]bool{} // names of SDK imports
			for _, im := range f.Imports {
				path, _ := strconv.Unquote(im.Path.Value)
				if !strings.HasPrefix(path, "github.com/aws/") {
					continue
				}
				if dir == "pkg/migrate" {
					problems = append(problems, fmt.Sprintf("%s imports %s", filepath.Base(p), path))
				}
				name := path[strings.LastIndex(path, "/")+1:]
				if im.Name != nil {
					name = im.Name.Name
				}
				sdk[name] = true
			}
			for _, decl := range f.Decls {
				var node ast.Node
				var name string
				switch d := decl.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
						continue
					}
					node, name = d.Type, d.Name.Name
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
							if mentionsSDK(ts.Type, sdk) {
								problems = append(problems, fmt.Sprintf("%s: type %s mentions the SDK", filepath.Base(p), ts.Name.Name))
							}
						}
					}
					continue
				default:
					continue
				}
				if mentionsSDK(node, sdk) {
					problems = append(problems, fmt.Sprintf("%s: %s mentions the SDK", filepath.Base(p), name))
				}
			}
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(r *ast.FieldList) bool {
	e := r.List[0].Type
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	id, ok := e.(*ast.Ident)
	return ok && id.IsExported()
}

// mentionsSDK reports whether n names a type of an SDK import, leaving
// out unexported struct fields.
func mentionsSDK(n ast.Node, sdk map[string]bool) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Field:
			if len(n.Names) > 0 && !n.Names[0].IsExported() {
				return false
			}
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && sdk[id.Name] {
				found = true
			}
		}
		return !found
	})
	return found
}

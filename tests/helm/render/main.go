// Command render renders a Helm chart the way `helm template` does, for the chart tests: no helm
// binary can be installed here. It follows Helm 3's engine where the wsrelay chart depends on it:
// one text/template set for the chart and its charts/ subcharts, sprig minus env/expandenv,
// include, tpl, required, toYaml/fromYaml/toJson/fromJson, .Files, a stub lookup,
// missingkey=zero with "<no value>" blanked, values decoded as JSON numbers (float64), user values
// coalesced over values.yaml (a user's null deletes a key, a default null stays), subchart values
// under the subchart's name with `global` always set, charts/ subcharts rendered with their own
// values, the coalesced values of each chart validated against its values.schema.json before
// anything renders (gojsonschema, as Helm 3 before 3.18, with its error message), the top chart's
// NOTES.txt executed (not printed).
//
// Not covered: dependency conditions, tags and aliases, library charts' type check, byte-exact
// toYaml (Helm indents lists one step less), manifest sorting by kind.
//
//	render [-f values.yaml]... [--set a.b=v]... [--set-string a.b=v]... [--name N] [--namespace NS]
//	       [--api-versions group/version]... [--notes FILE] CHART_DIR
//
// --notes FILE writes the rendered NOTES.txt there (helm install prints it; helm template does not).
// A chart's kubeVersion must admit the Kubernetes version rendered for (v1.30.0), as in helm.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

type chartMeta struct {
	APIVersion   string
	Name         string
	Version      string
	AppVersion   string
	Description  string
	Type         string
	Home         string
	Icon         string
	KubeVersion  string
	Deprecated   bool
	Keywords     []string
	Sources      []string
	Annotations  map[string]string
	Maintainers  []interface{}
	Dependencies []map[string]interface{}
}

type chart struct {
	meta      chartMeta
	dir       string
	prefix    string // template name prefix: "app" or "app/charts/wsrelay"
	defaults  map[string]interface{}
	schema    []byte // values.schema.json, nil without one
	files     files
	templates map[string]string // template name -> text
	subcharts []*chart
}

// files is Helm's .Files: every chart file outside templates/ and charts/ but Chart.yaml and values.yaml.
type files map[string][]byte

func (f files) Get(name string) string      { return string(f[name]) }
func (f files) GetBytes(name string) []byte { return f[name] }

func (f files) Glob(pattern string) files {
	out := files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

func (f files) Lines(name string) []string {
	return strings.Split(strings.TrimSuffix(string(f[name]), "\n"), "\n")
}

func (f files) AsConfig() string {
	m := map[string]string{}
	for name, data := range f {
		m[path.Base(name)] = string(data)
	}
	return toYaml(m)
}

type versionSet []string

func (v versionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// jsonValues converts decoded YAML to what Helm holds after sigs.k8s.io/yaml: JSON types only.
func jsonValues(v interface{}) (interface{}, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out interface{}
	err = json.Unmarshal(data, &out)
	return out, err
}

func readYamlMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	v, err := jsonValues(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	m, ok := v.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("%s: not a mapping", file)
	}
	return m, nil
}

// mergeMaps lays src over dst (later -f files and --set over earlier ones), keeping nulls.
func mergeMaps(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		dm, dok := dst[k].(map[string]interface{})
		sm, sok := sv.(map[string]interface{})
		if dok && sok {
			dst[k] = mergeMaps(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// coalesce fills dst (user values) from src (chart defaults) as Helm's CoalesceValues does: maps
// merge; a null in dst deletes a key the defaults have, so a user can remove a default; a null
// default the user left alone stays, and the schema sees it.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		dv, present := dst[k]
		if !present {
			dst[k] = sv
			continue
		}
		if dv == nil {
			delete(dst, k)
			continue
		}
		dm, dok := dv.(map[string]interface{})
		sm, sok := sv.(map[string]interface{})
		if dok && sok {
			dst[k] = coalesce(dm, sm)
		}
	}
	return dst
}

// validateValues checks the coalesced values of c against its values.schema.json, then those of
// each subchart against theirs, as Helm's ValidateAgainstSchema does, with its message.
func validateValues(c *chart, vals map[string]interface{}) (string, error) {
	var sb strings.Builder
	if c.schema != nil {
		data, err := json.Marshal(vals)
		if err != nil {
			return "", err
		}
		result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(c.schema),
			gojsonschema.NewBytesLoader(data))
		if err != nil {
			return "", fmt.Errorf("%s/values.schema.json: %v", c.prefix, err)
		}
		if !result.Valid() {
			fmt.Fprintf(&sb, "%s:\n", c.meta.Name)
			for _, e := range result.Errors() {
				fmt.Fprintf(&sb, "- %s\n", e)
			}
		}
	}
	for _, sc := range c.subcharts {
		sv, _ := vals[sc.meta.Name].(map[string]interface{})
		msg, err := validateValues(sc, sv)
		if err != nil {
			return "", err
		}
		sb.WriteString(msg)
	}
	return sb.String(), nil
}

func loadChart(dir, parentPrefix string) (*chart, error) {
	c := &chart{dir: dir, files: files{}, templates: map[string]string{}}
	metaMap, err := readYamlMap(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	metaJSON, _ := json.Marshal(metaMap)
	if err := json.Unmarshal(metaJSON, &c.meta); err != nil {
		return nil, fmt.Errorf("%s/Chart.yaml: %v", dir, err)
	}
	if c.meta.Name == "" || c.meta.Version == "" {
		return nil, fmt.Errorf("%s/Chart.yaml: name and version are required", dir)
	}
	c.prefix = c.meta.Name
	if parentPrefix != "" {
		c.prefix = parentPrefix + "/charts/" + c.meta.Name
	}
	if _, err := os.Stat(filepath.Join(dir, "values.yaml")); err == nil {
		if c.defaults, err = readYamlMap(filepath.Join(dir, "values.yaml")); err != nil {
			return nil, err
		}
	} else {
		c.defaults = map[string]interface{}{}
	}
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		if info.IsDir() {
			if rel == "charts" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			c.templates[c.prefix+"/"+rel] = string(data)
		case rel == "values.schema.json":
			c.schema = data
		case rel != "Chart.yaml" && rel != "values.yaml":
			c.files[rel] = data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	subdirs, _ := filepath.Glob(filepath.Join(dir, "charts", "*", "Chart.yaml"))
	present := map[string]bool{}
	for _, sub := range subdirs {
		sc, err := loadChart(filepath.Dir(sub), c.prefix)
		if err != nil {
			return nil, err
		}
		present[sc.meta.Name] = true
		c.subcharts = append(c.subcharts, sc)
	}
	for _, dep := range c.meta.Dependencies {
		if name, _ := dep["name"].(string); !present[name] {
			return nil, fmt.Errorf("found in Chart.yaml, but missing in charts/ directory: %s", name)
		}
	}
	return c, nil
}

// subchartValues gives each subchart its own values (coalesced with its defaults), as Helm does.
func subchartValues(c *chart, vals map[string]interface{}) {
	for _, sc := range c.subcharts {
		own, _ := vals[sc.meta.Name].(map[string]interface{})
		if own == nil {
			own = map[string]interface{}{}
		}
		defaults, _ := jsonValues(sc.defaults)
		own = coalesce(own, defaults.(map[string]interface{}))
		// Helm gives every subchart a `global` table, empty when no chart sets one.
		g, ok := vals["global"].(map[string]interface{})
		if !ok {
			g = map[string]interface{}{}
		}
		own["global"] = g
		vals[sc.meta.Name] = own
		subchartValues(sc, own)
	}
}

func toYaml(v interface{}) string {
	// Through JSON first, as sigs.k8s.io/yaml does: float64 3 prints as 3, not 3.0e+00.
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var plain interface{}
	if err := yaml.Unmarshal(data, &plain); err != nil {
		return ""
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(plain); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func fromYaml(s string) map[string]interface{} {
	var raw interface{}
	if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	v, err := jsonValues(raw)
	if err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	m, _ := v.(map[string]interface{})
	if m == nil {
		m = map[string]interface{}{}
	}
	return m
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

type engine struct {
	set   *template.Template
	depth int
}

func (e *engine) funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYaml
	f["fromYaml"] = fromYaml
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		if e.depth > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		e.depth++
		defer func() { e.depth-- }()
		var buf bytes.Buffer
		if err := e.set.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := e.set.Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

type job struct {
	name    string
	ctx     map[string]interface{}
	discard bool // NOTES.txt: helm template does not print it, but helm install renders it
}

func (e *engine) addChart(c *chart, vals map[string]interface{}, release map[string]interface{}, caps map[string]interface{}, jobs *[]job) error {
	for _, sc := range c.subcharts {
		sv, _ := vals[sc.meta.Name].(map[string]interface{})
		if err := e.addChart(sc, sv, release, caps, jobs); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(c.templates))
	for n := range c.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := e.set.New(n).Parse(c.templates[n]); err != nil {
			return err
		}
		base := path.Base(n)
		notes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || (notes && strings.Contains(c.prefix, "/")) {
			continue
		}
		*jobs = append(*jobs, job{n, map[string]interface{}{
			"Values":       vals,
			"Release":      release,
			"Chart":        c.meta,
			"Capabilities": caps,
			"Files":        c.files,
			"Template":     map[string]interface{}{"Name": n, "BasePath": c.prefix + "/templates"},
		}, notes})
	}
	return nil
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

var execErr = regexp.MustCompile(`^template: (.*?:\d+:\d+): executing ".*?" at <.*?>: error calling (?:fail|required): (.*)$`)

func helmError(err error) error {
	msg := err.Error()
	// The innermost template position is the useful one, as in Helm's "execution error at (...)".
	parts := strings.Split(msg, ": template: ")
	last := parts[len(parts)-1]
	if !strings.HasPrefix(last, "template: ") {
		last = "template: " + last
	}
	if m := execErr.FindStringSubmatch(last); m != nil {
		return fmt.Errorf("execution error at (%s): %s", m[1], m[2])
	}
	return err
}

// setValue applies one --set/--set-string path=value (dotted path; no list indexes).
func setValue(vals map[string]interface{}, spec string, typed bool) error {
	for _, pair := range strings.Split(spec, ",") {
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 {
			return fmt.Errorf("bad --set %q: want key=value", pair)
		}
		keys := strings.Split(pair[:eq], ".")
		raw := pair[eq+1:]
		var v interface{} = raw
		if typed {
			if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
				v = n
			} else if raw == "true" || raw == "false" {
				v = raw == "true"
			} else if raw == "null" {
				v = nil
			}
		}
		m := vals
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	return nil
}

// The Kubernetes version charts are rendered for (.Capabilities.KubeVersion).
const kubeVersion = "v1.30.0"

// checkKubeVersion refuses a chart whose kubeVersion range excludes the version, as helm does.
func checkKubeVersion(meta chartMeta, version string) error {
	if meta.KubeVersion == "" {
		return nil
	}
	constraint, err := semver.NewConstraint(meta.KubeVersion)
	if err != nil {
		return fmt.Errorf("chart %s: kubeVersion %q: %v", meta.Name, meta.KubeVersion, err)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return err
	}
	if !constraint.Check(v) {
		return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", meta.KubeVersion, version)
	}
	return nil
}

type multi []string

func (m *multi) add(v string) { *m = append(*m, v) }

func run(args []string) error {
	var valueFiles, sets, setStrings, apiVersions multi
	name, namespace, chartDir, notesFile := "release-name", "default", "", ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch a {
		case "-f", "--values", "--set", "--set-string", "--name", "--namespace", "--api-versions", "--notes":
			if v, err = next(); err != nil {
				return err
			}
		}
		switch a {
		case "-f", "--values":
			valueFiles.add(v)
		case "--set":
			sets.add(v)
		case "--set-string":
			setStrings.add(v)
		case "--name":
			name = v
		case "--namespace":
			namespace = v
		case "--api-versions":
			apiVersions.add(v)
		case "--notes":
			notesFile = v
		default:
			if strings.HasPrefix(a, "-") || chartDir != "" {
				return fmt.Errorf("unexpected argument %q", a)
			}
			chartDir = a
		}
	}
	if chartDir == "" {
		return errors.New("usage: render [-f values.yaml]... [--set k=v]... [--set-string k=v]... [--name N] CHART_DIR")
	}
	c, err := loadChart(filepath.Clean(chartDir), "")
	if err != nil {
		return err
	}
	if err := checkKubeVersion(c.meta, kubeVersion); err != nil {
		return err
	}
	user := map[string]interface{}{}
	for _, f := range valueFiles {
		m, err := readYamlMap(f)
		if err != nil {
			return err
		}
		user = mergeMaps(user, m)
	}
	for _, s := range sets {
		if err := setValue(user, s, true); err != nil {
			return err
		}
	}
	for _, s := range setStrings {
		if err := setValue(user, s, false); err != nil {
			return err
		}
	}
	userJSON, err := jsonValues(user)
	if err != nil {
		return err
	}
	defaults, _ := jsonValues(c.defaults)
	vals := coalesce(userJSON.(map[string]interface{}), defaults.(map[string]interface{}))
	subchartValues(c, vals)
	if msg, err := validateValues(c, vals); err != nil {
		return err
	} else if msg != "" {
		return fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s", msg)
	}

	base := versionSet{"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v1", "autoscaling/v2",
		"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "apiextensions.k8s.io/v1"}
	caps := map[string]interface{}{
		"KubeVersion": map[string]interface{}{"Version": kubeVersion, "Major": "1", "Minor": "30", "GitVersion": kubeVersion},
		"APIVersions": append(base, apiVersions...),
		"HelmVersion": map[string]interface{}{"Version": "v3.14.0"},
	}
	release := map[string]interface{}{
		"Name": name, "Namespace": namespace, "Service": "Helm",
		"IsInstall": true, "IsUpgrade": false, "Revision": 1,
	}
	e := &engine{}
	e.set = template.New("gotpl").Option("missingkey=zero")
	e.set.Funcs(e.funcs())
	var jobs []job
	if err := e.addChart(c, vals, release, caps, &jobs); err != nil {
		return err
	}
	var out bytes.Buffer
	for _, j := range jobs {
		var buf bytes.Buffer
		if err := e.set.ExecuteTemplate(&buf, j.name, j.ctx); err != nil {
			return helmError(err)
		}
		if j.discard {
			if notesFile != "" {
				notes := strings.ReplaceAll(buf.String(), "<no value>", "")
				if err := os.WriteFile(notesFile, []byte(notes), 0o644); err != nil {
					return err
				}
			}
			continue
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		for _, doc := range docSeparator.Split(text, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", j.name, strings.Trim(doc, "\n"))
		}
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

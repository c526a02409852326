// Renders chart templates with Go's text/template and Sprig, the way Helm's engine does
// (helm.sh/helm/v3/pkg/engine: include, required, fail, toYaml via JSON then YAML,
// missingkey=zero or error, "<no value>" removed). helm-chart.test.ts uses it, when Go and
// Sprig are installed, to check that its own renderer (helm-template.ts) gives the same text.
//
// stdin: {"templates": {name: source}, "render": [names], "data": {...}, "strict": bool}
// stdout: {"files": {name: text}} or {"error": "..."}
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v2"
)

type input struct {
	Templates map[string]string    `json:"templates"`
	Render    []string             `json:"render"`
	Data      map[string]interface{} `json:"data"`
	Strict    bool                 `json:"strict"`
}

// toYAML is sigs.k8s.io/yaml.Marshal (JSON, then YAML through yaml.v2) without the final newline.
func toYAML(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var obj interface{}
	if err := yaml.Unmarshal(j, &obj); err != nil {
		return ""
	}
	y, err := yaml.Marshal(obj)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(y), "\n")
}

func main() {
	var in input
	out := map[string]interface{}{}
	defer func() {
		if r := recover(); r != nil {
			out = map[string]interface{}{"error": fmt.Sprint(r)}
		}
		_ = json.NewEncoder(os.Stdout).Encode(out)
	}()
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	t := template.New("gotpl")
	if in.Strict {
		t.Option("missingkey=error")
	} else {
		t.Option("missingkey=zero")
	}
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var b strings.Builder
		err := t.ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	funcs["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(warn)
		} else if s, ok := val.(string); ok && s == "" {
			return val, errors.New(warn)
		}
		return val, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	t.Funcs(funcs)
	for name, src := range in.Templates {
		if _, err := t.New(name).Parse(src); err != nil {
			out = map[string]interface{}{"error": err.Error()}
			return
		}
	}
	files := map[string]string{}
	for _, name := range in.Render {
		data := map[string]interface{}{}
		for k, v := range in.Data {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": name, "BasePath": "deid-gateway/templates"}
		var b strings.Builder
		if err := t.ExecuteTemplate(&b, name, data); err != nil {
			out = map[string]interface{}{"error": err.Error()}
			return
		}
		files[name] = strings.ReplaceAll(b.String(), "<no value>", "")
	}
	out["files"] = files
}

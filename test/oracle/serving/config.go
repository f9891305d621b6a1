package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apisconfig "knative.dev/serving/pkg/apis/config"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"sigs.k8s.io/yaml"
)

// configFiles maps each ConfigMap that the serving webhook's config store watches
// (apisconfig.NewStore) to its file in the config directory.
var configFiles = map[string]string{
	apisconfig.DefaultsConfigName: "defaults.yaml",
	apisconfig.FeaturesConfigName: "features.yaml",
	asconfig.ConfigName:           "autoscaler.yaml",
}

type oracle struct {
	base       map[string]*corev1.ConfigMap
	baseConfig *apisconfig.Config
}

// loadConfigMaps reads the three ConfigMaps and checks that each file holds the one it should.
func loadConfigMaps(dir string) (map[string]*corev1.ConfigMap, error) {
	out := map[string]*corev1.ConfigMap{}
	for name, file := range configFiles {
		path := filepath.Join(dir, file)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		cm := &corev1.ConfigMap{}
		if err := yaml.UnmarshalStrict(data, cm); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if cm.Kind != "ConfigMap" || cm.Name != name {
			return nil, fmt.Errorf("%s: want ConfigMap %q, found %s %q", path, name, cm.Kind, cm.Name)
		}
		out[name] = cm
	}
	return out, nil
}

// buildConfig runs Knative's ConfigMap constructors (those apisconfig.NewStore registers, so the
// result is what (*Store).Load would hold) on the loaded ConfigMaps, with the overrides' keys
// replacing or adding data keys.
func buildConfig(base map[string]*corev1.ConfigMap, overrides map[string]map[string]string) (*apisconfig.Config, error) {
	var unknown []string
	for name := range overrides {
		if _, ok := base[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config: unknown ConfigMap(s) %s (known: config-defaults, config-features, config-autoscaler)", strings.Join(unknown, ", "))
	}
	cm := func(name string) *corev1.ConfigMap {
		c := base[name].DeepCopy()
		if len(overrides[name]) > 0 {
			if c.Data == nil {
				c.Data = map[string]string{}
			}
			maps.Copy(c.Data, overrides[name])
		}
		return c
	}
	defaults, err := apisconfig.NewDefaultsConfigFromConfigMap(cm(apisconfig.DefaultsConfigName))
	if err != nil {
		return nil, fmt.Errorf("config-defaults: %w", err)
	}
	features, err := apisconfig.NewFeaturesConfigFromConfigMap(cm(apisconfig.FeaturesConfigName))
	if err != nil {
		return nil, fmt.Errorf("config-features: %w", err)
	}
	autoscaler, err := asconfig.NewConfigFromConfigMap(cm(asconfig.ConfigName))
	if err != nil {
		return nil, fmt.Errorf("config-autoscaler: %w", err)
	}
	return &apisconfig.Config{Defaults: defaults, Features: features, Autoscaler: autoscaler}, nil
}

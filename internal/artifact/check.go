package artifact

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
)

// Check reports, without fetching anything, whether Resolve could serve
// modelDataURL: a local path or file:// URI must exist; any other scheme
// needs an opener. CreateModel uses it to refuse a bad URL up front.
func (c *Cache) Check(modelDataURL string) error {
	if !strings.Contains(modelDataURL, "://") {
		if _, err := os.Stat(modelDataURL); err != nil {
			return fmt.Errorf("no such file or directory: %s", modelDataURL)
		}
		return nil
	}
	u, err := url.Parse(modelDataURL)
	if err != nil {
		return err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "file" {
		if (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) {
			return fmt.Errorf("a file URL needs an absolute path (file:///...)")
		}
		if _, err := os.Stat(u.Path); err != nil {
			return fmt.Errorf("no such file or directory: %s", u.Path)
		}
		return nil
	}
	if _, ok := c.openers[scheme]; !ok {
		return fmt.Errorf("%w %s: object storage is not configured", ErrUnsupportedScheme, scheme)
	}
	return nil
}

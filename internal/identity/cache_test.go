package identity

import (
	"fmt"
	"testing"
	"time"
)

func TestCacheStaysBounded(t *testing.T) {
	ts := &Tokens{cache: map[digest]cached{}}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range cacheMax + 500 {
		ts.remember(hash(fmt.Sprint(i)), cached{until: now.Add(CacheTTL)}, now)
	}
	if len(ts.cache) > cacheMax {
		t.Errorf("cache holds %d entries; bound %d", len(ts.cache), cacheMax)
	}
	if _, ok := ts.cache[hash(fmt.Sprint(cacheMax+499))]; !ok {
		t.Error("the newest entry was not kept")
	}
}

// Hash routes with their filters and selections in the URL, so a link shows what its sender
// saw: #/jobs?state=SEARCHING&q=amc&sort=created&desc=1, #/job/ID?tab=policy, #/fleet,
// #/compare?ids=A,B, #/predictors?class=C, #/campaigns?campaign=NAME, #/campaign/RUN, #/submit,
// #/login.
import { useEffect, useState } from 'preact/hooks';

export function parseHash(hash = location.hash) {
  const text = hash.replace(/^#\/?/, '');
  const [pathPart, query = ''] = text.split('?');
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || 'jobs', id: parts[1] || '', params: Object.fromEntries(new URLSearchParams(query)) };
}

export function hrefOf(page, id = '', params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== undefined && v !== null));
  const path = id ? `${page}/${encodeURIComponent(id)}` : page;
  const query = q.toString();
  return `#/${path}${query ? `?${query}` : ''}`;
}

export function navigate(page, id, params) {
  location.hash = hrefOf(page, id, params);
}

// The current route, re-rendering on each change.
export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const onChange = () => setRoute(parseHash());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

// Replaces the current route's params (no new history entry for each keystroke).
export function replaceParams(route, params) {
  const merged = { ...route.params, ...params };
  history.replaceState(null, '', hrefOf(route.page, route.id, merged));
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

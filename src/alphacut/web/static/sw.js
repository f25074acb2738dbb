// alphacut service worker: keeps the app working offline after the first visit.
// Every asset lives under a content-hashed URL, so a cached copy is never stale:
// /assets/* is served cache-first; the page is network-first with the cached
// copy as the fallback when the server is not running.
const MANIFEST = {{manifest}};
const CACHE = "alphacut";

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(["/", ...MANIFEST.shell]);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      // Drop assets of older versions (an old model, an old runtime).
      const current = new Set(MANIFEST.assets);
      const cache = await caches.open(CACHE);
      for (const request of await cache.keys()) {
        const path = new URL(request.url).pathname;
        if (path.startsWith("/assets/") && !current.has(path)) await cache.delete(request);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/assets/")) {
    event.respondWith(cacheFirst(request));
  } else if (url.pathname === "/" && request.mode === "navigate") {
    event.respondWith(networkFirst(request));
  }
});

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request, { ignoreSearch: true });
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && response.status === 200) {
    // The page reads the body while the cache stores its copy.
    cache.put(request, response.clone()).catch(() => {});
  }
  return response;
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put("/", response.clone());
    return response;
  } catch (error) {
    const hit = await cache.match("/");
    if (hit) return hit;
    throw error;
  }
}

// `npm run dev -w @ferry/example-web-app` serves the page and proxies the API to a Ferry on :8080;
// `npm run build` writes dist/, which any static host (or `ferry serve` with web.dashboardDir) serves.
import { defineConfig } from 'vite';

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 2000 },
  server: { proxy: { '/v1': process.env.FERRY_URL ?? 'http://localhost:8080' } },
});

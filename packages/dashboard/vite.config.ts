// Builds the dashboard into dist/, which the Ferry server serves at `/`. onnxruntime-web's WASM file
// is referenced with `new URL(..., import.meta.url)`, so Vite emits it under assets/ and edge
// inference loads it from the same server (no CDN).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 2000, sourcemap: false },
  server: {
    proxy: {
      '/v1': 'http://localhost:8080',
      '/openai': 'http://localhost:8080',
      '/readyz': 'http://localhost:8080',
      '/metrics': 'http://localhost:8080',
    },
  },
});

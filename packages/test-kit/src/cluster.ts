// Helpers of the multi-process cluster tests: nginx from the distribution, free ports, and the
// repository's deploy/nginx/nginx.conf rewritten for local upstreams and writable paths.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

export function nginxBinary(): string | undefined {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) {
    try {
      execFileSync(p, ['-v'], { stdio: 'ignore' });
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** The shipped nginx.conf with the upstreams, listen address and writable paths of this test. */
export function localNginxConf(shipped: string, upstreams: number[], port: number, dir: string): string {
  let i = 0;
  // The gRPC proxy block (between its markers) is left out: these tests drive HTTP only, and
  // deploy-manifests.test.ts checks its upstreams against the compose file.
  let conf = shipped
    .replace(/\n[ \t]*# --- gRPC ---[\s\S]*?# --- end gRPC ---\n/, '\n')
    .replace(/^(\s*)server\s+[\w.-]+:\d+/gm, (_m, indent: string) => `${indent}server 127.0.0.1:${upstreams[i++]}`)
    .replace(/^(\s*)listen\s+\d+;/m, `$1listen 127.0.0.1:${port};`)
    .replace(/^pid\s+[^;]+;/m, `pid ${dir}/nginx.pid;`)
    .replace(/^error_log\s+[^;]+;/m, `error_log ${dir}/error.log warn;`);
  assert.equal(i, upstreams.length, 'one upstream server line per replica');
  conf = conf.replace(
    /^http\s*\{/m,
    `http {\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fastcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;`,
  );
  return conf;
}

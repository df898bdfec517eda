// A relying party that is not ours: node `jose` (npm) verifies a JWT with
// only what a gateway is configured with, the JWK Set URL of botid-ca, the
// issuer and the audience (createRemoteJWKSet + jwtVerify). The CA bundle
// reaches node through NODE_EXTRA_CA_CERTS.
//
// usage: node jwks-check.cjs JWKS_URL ISSUER AUD TOKEN_FILE
//   exit 0 and print the claims if jose accepts the token, 1 (and the
//   reason) if it refuses it, 2 if the check itself broke.
'use strict';
const fs = require('fs');

async function main() {
	const [url, issuer, audience, file] = process.argv.slice(2);
	let jose;
	try {
		jose = require('jose');
	} catch (e) {
		console.error('jwks-check: cannot load jose: ' + e.message);
		return 2;
	}
	const token = fs.readFileSync(file, 'utf8').trim();
	const jwks = jose.createRemoteJWKSet(new URL(url));
	try {
		const { payload } = await jose.jwtVerify(token, jwks, {
			issuer, audience,
			algorithms: ['ES256', 'ES384', 'RS256'],
			requiredClaims: ['iat', 'exp', 'sub', 'scope'],
		});
		console.log(JSON.stringify(payload));
		return 0;
	} catch (e) {
		// Only jose's own verdicts count as a refusal.
		if (e instanceof jose.errors.JOSEError) {
			console.log('jose rejected: ' + e.code + ': ' + e.message);
			return 1;
		}
		console.error('jwks-check: ' + e.stack);
		return 2;
	}
}

main().then((rc) => process.exit(rc), (e) => {
	console.error('jwks-check: ' + e.stack);
	process.exit(2);
});

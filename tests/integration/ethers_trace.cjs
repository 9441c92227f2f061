// ethers v6 calling geth's tracing API through a JSON-RPC URL: prints the callTracer (withLog)
// trace of one transaction as one JSON line.
// usage: node ethers_trace.cjs ETHERS_DIR URL TX_HASH
const [ethersDir, url, txHash] = process.argv.slice(2);
const { ethers } = require(require.resolve("ethers", { paths: [ethersDir] }));

async function main() {
  const provider = new ethers.JsonRpcProvider(url, 1337, { staticNetwork: true });
  const trace = await provider.send("debug_traceTransaction", [txHash, { tracer: "callTracer", tracerConfig: { withLog: true } }]);
  console.log(JSON.stringify(trace));
}
main().catch((error) => { console.error(error); process.exit(1); });

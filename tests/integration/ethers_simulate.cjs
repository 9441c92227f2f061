// ethers v6 sends eth_simulateV1 through a JSON-RPC URL (its provider batches requests) and prints the result.
// usage: node ethers_simulate.cjs ETHERS_DIR URL PAYLOAD_JSON
const [ethersDir, url, payload] = process.argv.slice(2);
const { ethers } = require(require.resolve("ethers", { paths: [ethersDir] }));

async function main() {
  const provider = new ethers.JsonRpcProvider(url, 1337, { staticNetwork: true });
  const [blocks, head] = await Promise.all([
    provider.send("eth_simulateV1", [JSON.parse(payload), "latest"]),
    provider.getBlockNumber(),
  ]);
  console.log(JSON.stringify({ blocks, head }));
}
main().catch((error) => { console.error(error); process.exit(1); });

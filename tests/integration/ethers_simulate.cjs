// ethers v6 sends eth_simulateV1 through a JSON-RPC URL (its provider batches requests) and prints the result.
// usage: node ethers_simulate.cjs ETHERS_DIR URL PAYLOAD_JSON
const [ethersDir, url, payload] = process.argv.slice(2);
const { ethers } = require(require.resolve("ethers", { paths: [ethersDir] }));

async function main() {
  const provider = new ethers.JsonRpcProvider(url, 1337, { staticNetwork: true });
  // on the head it just read, named by number: a new block landing meanwhile cannot move the base
  const head = await provider.getBlockNumber();
  const blocks = await provider.send("eth_simulateV1", [JSON.parse(payload), ethers.toQuantity(head)]);
  console.log(JSON.stringify({ blocks, head }));
}
main().catch((error) => { console.error(error); process.exit(1); });

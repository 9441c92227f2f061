// ethers v6 `contract.on(event)` through a JSON-RPC URL: prints READY once listening, then one JSON
// line per Stored event, and exits after COUNT events (or TIMEOUT ms).
// usage: node ethers_events.cjs ETHERS_DIR URL ADDRESS COUNT TIMEOUT_MS
const [ethersDir, url, address, count, timeoutMs] = process.argv.slice(2);
const { ethers } = require(require.resolve("ethers", { paths: [ethersDir] }));

async function main() {
  const provider = new ethers.JsonRpcProvider(url, 1337, { staticNetwork: true, pollingInterval: 200 });
  const contract = new ethers.Contract(address, ["event Stored(bytes32 value)"], provider);
  let seen = 0;
  const timer = setTimeout(() => { console.log("TIMEOUT"); process.exit(2); }, Number(timeoutMs));
  await contract.on("Stored", (value, event) => {
    seen += 1;
    console.log(JSON.stringify({ value, block: event.log.blockNumber, tx: event.log.transactionHash }));
    if (seen >= Number(count)) {
      clearTimeout(timer);
      setTimeout(() => process.exit(0), 1000); // a duplicate arriving late would still be printed
    }
  });
  // contract.on installs its filter on the first poll: wait until it has polled once.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  console.log("READY");
}
main().catch((error) => { console.error(error); process.exit(1); });

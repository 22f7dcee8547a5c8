// Node side of `scripts/bench upload`, on the Azure SDK for JavaScript (@azure/storage-blob).
//
// It is two things: the "Node loop" contender, which uploads a folder file by file, one after
// the other, the way the older pipeline scripts did; and the benchmark's housekeeping against
// Azurite (create and delete a container, mint a SAS URL for the raw curl PUT), so the driver
// needs no second storage client. The connection string comes from
// AZURE_STORAGE_CONNECTION_STRING, never from the command line.
//
//   node blob.js upload <container> <folder>   sequential uploadFile of every file under folder
//   node blob.js create <container>            create the container
//   node blob.js delete <container>            delete the container (frees Azurite's memory)
//   node blob.js sas <container> <blob>        print a blob URL with a 1-hour write SAS
//   node blob.js container-sas <container>     print a 1-hour create/write SAS query for the container

"use strict";

const fs = require("node:fs");
const path = require("node:path");
const {
  BlobServiceClient,
  BlobSASPermissions,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} = require("@azure/storage-blob");

const TYPES = {
  ".sh": "text/x-shellscript",
  ".ps1": "text/plain",
  ".json": "application/json",
  ".txt": "text/plain",
};

function service() {
  const cs = process.env.AZURE_STORAGE_CONNECTION_STRING;
  if (!cs) {
    throw new Error("AZURE_STORAGE_CONNECTION_STRING is not set");
  }
  return BlobServiceClient.fromConnectionString(cs);
}

function* walk(dir, prefix) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const full = path.join(dir, entry.name);
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      yield* walk(full, name);
    } else if (entry.isFile()) {
      yield [full, name];
    }
  }
}

async function upload(container, folder) {
  const client = service().getContainerClient(container);
  let files = 0;
  for (const [full, name] of walk(folder, "")) {
    const type = TYPES[path.extname(name)] || "application/octet-stream";
    await client.getBlockBlobClient(name).uploadFile(full, {
      blobHTTPHeaders: { blobContentType: type },
    });
    files += 1;
  }
  console.log(`${files} files uploaded`);
}

// The account key of the connection string, to sign SAS tokens with.
function sharedKey() {
  const cs = process.env.AZURE_STORAGE_CONNECTION_STRING || "";
  const get = (k) => (cs.match(new RegExp(`(?:^|;)${k}=([^;]+)`)) || [])[1];
  return new StorageSharedKeyCredential(get("AccountName"), get("AccountKey"));
}

function sas(container, blob) {
  const credential = sharedKey();
  const client = service().getContainerClient(container).getBlockBlobClient(blob);
  const query = generateBlobSASQueryParameters(
    {
      containerName: container,
      blobName: blob,
      permissions: BlobSASPermissions.parse("cw"),
      expiresOn: new Date(Date.now() + 3600 * 1000),
    },
    credential,
  ).toString();
  console.log(`${client.url}?${query}`);
}

function containerSas(container) {
  const credential = sharedKey();
  console.log(
    generateBlobSASQueryParameters(
      {
        containerName: container,
        permissions: ContainerSASPermissions.parse("cw"),
        expiresOn: new Date(Date.now() + 3600 * 1000),
      },
      credential,
    ).toString(),
  );
}

async function main(argv) {
  const [command, container, arg] = argv;
  switch (command) {
    case "upload":
      return upload(container, arg);
    case "create":
      return service().getContainerClient(container).create();
    case "delete":
      return service().getContainerClient(container).delete();
    case "sas":
      return sas(container, arg);
    case "container-sas":
      return containerSas(container);
    default:
      throw new Error(`unknown command '${command}' (upload, create, delete, sas, container-sas)`);
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`blob.js: ${err.message}`);
  process.exit(1);
});

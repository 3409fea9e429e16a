from tests.helpers import connect, create


async def test_create_wait_delete_round_trip(server, mode):
    async with connect(server, mode) as client:
        created = await create(client, "database", "orders")
        waited = await client.call_tool("wait_for_ready", {"kind": "database", "id": created["instance"]["id"]})
        assert waited.structured_content["ready"] is True
        deleted = await client.call_tool("delete_database", {"id": created["instance"]["id"], "confirm_name": "orders"})
        assert deleted.structured_content["deleted"] is True

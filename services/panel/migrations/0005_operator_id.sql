-- The signed-in operator's id: "Asignar a mí" assigns tickets to it.
ALTER TABLE sessions ADD COLUMN operator_id bigint;

DROP TABLE key_state;
DROP TABLE data_keys;
